// Regions (platform admins): each region's status, its health (can it take a namespace now), capacity and namespaces, and its ingest tokens
// (mint one, its secret shown once; revoke).
import { api, badge, confirmAction, el, enc, facts, replace, say, sayError, table, when } from "./dashboard.js";

const regionPath = (name, rest = "") => `/v1/regions/${enc(name)}${rest}`;

async function regionPanel(r) {
  const [detail, tokens] = await Promise.all([api("GET", regionPath(r.name)), api("GET", regionPath(r.name, "/ingest-tokens"))]);
  const form = el(
    "form",
    { class: "stack", novalidate: true, onsubmit: (e) => mint(e, r.name) },
    el("div", { class: "field" }, el("label", { for: `ingest-name-${r.name}` }, `Name of a new ingest token for ${r.name}`), el("input", { type: "text", id: `ingest-name-${r.name}`, name: "name", required: true, maxlength: "64", autocomplete: "off" })),
    el("div", {}, el("button", { type: "submit" }, `Mint an ingest token for ${r.name}`)),
  );
  return el(
    "section",
    { class: "panel", "aria-labelledby": `region-${r.name}` },
    el("h2", { id: `region-${r.name}` }, `${detail.display_name} (${detail.name})`),
    el("dl", { class: "facts" }, facts([
      ["Status", [badge(detail.status), detail.status_at ? [" since ", when(detail.status_at)] : null]],
      ["Health", badge(detail.health)],
      ["Cloud", [detail.cloud, detail.cloud_region, detail.size ? `size ${detail.size}` : ""].filter(Boolean).join(", ")],
      ["Namespaces", String(detail.namespaces)],
      ["CPU", `${detail.used.cpu_millicores} of ${detail.capacity.cpu_millicores} millicores used`],
      ["Memory", `${detail.used.memory_mib} of ${detail.capacity.memory_mib} MiB used`],
      detail.failure_reason ? ["Failure", `${detail.failure_step || ""}: ${detail.failure_reason}`] : null,
    ])),
    tokens.tokens.length
      ? table(
          `Ingest tokens of ${r.name}`,
          ["Name", "Created", "Last used", ""],
          tokens.tokens.map((t) => [
            t.name,
            [when(t.created_at), ` by ${t.created_by}`],
            when(t.last_used_at),
            el("button", { type: "button", class: "secondary", onclick: () => revoke(r.name, t), "aria-label": `Revoke ${t.name}` }, "Revoke"),
          ]),
        )
      : el("p", { class: "muted" }, "No live ingest token."),
    form,
  );
}

async function mint(event, region) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = form.elements.name.value.trim();
  try {
    const t = await api("POST", regionPath(region, "/ingest-tokens"), { name });
    replace(
      "#ingest-created",
      el("section", { class: "panel", "aria-labelledby": "ingest-created-title" },
        el("h2", { id: "ingest-created-title" }, `Ingest token ${t.name} for ${region}`),
        el("p", {}, "Its secret, shown this once:"),
        el("code", { id: "ingest-secret" }, t.token),
      ),
    );
    say(`Ingest token ${t.name} minted for ${region}.`);
    await load();
  } catch (error) {
    sayError(error);
  }
}

async function revoke(region, token) {
  if (!(await confirmAction(`Revoke ${token.name}?`, "It answers 401 at once: the runtime side using it stops reporting usage.", "Revoke"))) return;
  try {
    await api("DELETE", regionPath(region, `/ingest-tokens/${enc(token.id)}`));
    say(`Ingest token ${token.name} revoked.`);
    await load();
  } catch (error) {
    sayError(error);
  }
}

async function load() {
  const { regions } = await api("GET", "/v1/regions");
  replace("#regions", await Promise.all(regions.map(regionPanel)));
}

load().catch((error) => {
  replace("#regions", el("p", {}, "Regions are shown to platform admins."));
  sayError(error);
});
