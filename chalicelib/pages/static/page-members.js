// Members and their roles; an owner adds and removes outside viewers.
import { $, api, confirmAction, ctx, el, nsPath, onSubmit, replace, say, sayError, table } from "./dashboard.js";

async function load() {
  const { members } = await api("GET", nsPath("/members"));
  replace(
    "#members",
    table(
      `Members of ${ctx.ns}`,
      ["Login", "Role", "From", ""],
      members.map((m) => [
        m.login,
        m.role,
        m.source === "github" ? "GitHub team" : m.source,
        ctx.role === "owner" && m.role === "viewer" && m.source !== "github"
          ? el("button", { type: "button", class: "secondary", onclick: () => remove(m.login), "aria-label": `Remove ${m.login}` }, "Remove")
          : "",
      ]),
    ),
  );
}

async function remove(login) {
  if (!(await confirmAction(`Remove ${login}?`, `${login} loses access to ${ctx.ns} at once.`, "Remove"))) return;
  try {
    await api("DELETE", nsPath(`/members/${encodeURIComponent(login)}`));
    say(`${login} removed.`);
    await load();
  } catch (error) {
    sayError(error);
  }
}

onSubmit($("#viewer-form"), async (values, form) => {
  const member = await api("POST", nsPath("/members"), values);
  form.reset();
  say(`${member.login} added as a viewer.`);
  await load();
});

load().catch(sayError);
