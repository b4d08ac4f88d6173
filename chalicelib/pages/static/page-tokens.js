// API tokens: create (the secret shown once), list, revoke.
import { $, api, confirmAction, el, empty, onSubmit, replace, say, sayError, table, when } from "./dashboard.js";

async function load() {
  const [tokens, me] = await Promise.all([api("GET", "/v1/tokens"), api("GET", "/v1/me")]);
  const select = $("#token-namespace");
  if (!select.options.length) {
    select.replaceChildren(...me.namespaces.map((n) => el("option", { value: n.id }, `${n.id} (${n.role})`)));
  }
  const apiTokens = tokens.tokens;
  if (!apiTokens.length) {
    replace("#tokens", empty("No API token yet", el("p", {}, "Create one above for a script or CI, with only the scopes it needs.")));
    return;
  }
  replace(
    "#tokens",
    table(
      "Your live tokens",
      ["Name", "Namespace", "Scopes", "Created", "Expires", "Last used", ""],
      apiTokens.map((t) => [
        t.name,
        t.namespace || "any (a login)",
        t.scopes.join(", "),
        when(t.created_at),
        when(t.expires_at),
        t.last_used_at ? when(t.last_used_at) : "never",
        el("button", { type: "button", class: "secondary", onclick: () => revoke(t), "aria-label": `Revoke ${t.name}` }, "Revoke"),
      ]),
    ),
  );
}

async function revoke(token) {
  if (!(await confirmAction(`Revoke ${token.name}?`, "Anything using this token stops working at once.", "Revoke"))) return;
  try {
    await api("DELETE", `/v1/tokens/${encodeURIComponent(token.id)}`);
    say(`Token ${token.name} revoked.`);
    await load();
  } catch (error) {
    sayError(error);
  }
}

onSubmit($("#token-form"), async (values, form) => {
  const created = await api("POST", "/v1/tokens", values);
  $("#token-secret").textContent = created.token;
  const box = $("#token-created");
  box.hidden = false;
  box.focus();
  form.reset();
  say(`Token ${created.name} created. Copy it now: it is shown once.`);
  await load();
});

load().catch(sayError);
