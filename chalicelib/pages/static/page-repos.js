// Linked repositories: list, link, change branch or auto-deploy, unlink.
import { $, api, badge, confirmAction, ctx, el, empty, enc, nsPath, onSubmit, replace, say, sayError, table, when } from "./dashboard.js";

const isAdmin = ["admin", "owner"].includes(ctx.role);

async function load() {
  const { repos } = await api("GET", nsPath("/repos"));
  if (!repos.length) {
    replace(
      "#repos",
      empty(
        "No repository linked",
        el("p", {}, "Link a repository of your organization and every push to its branch deploys the services whose code changed."),
        ctx.stage === "local" ? el("p", { class: "muted" }, "On the local cloud, acme/hello (the example service) is ready to link; push to it with ", el("code", {}, "python -m localcloud.github_push acme/hello --file VERSION=2 -m bump"), ".") : null,
      ),
    );
    return;
  }
  replace(
    "#repos",
    table(
      `Repositories linked to ${ctx.ns}`,
      ["Repository", "Branch", "Deploys on push", "Status", "Linked", ""],
      repos.map((r) => [
        r.full_name,
        r.branch,
        r.auto_deploy ? "yes" : "no",
        [badge(r.status), r.disabled_reason ? el("div", { class: "muted" }, r.disabled_reason) : null],
        when(r.created_at),
        isAdmin
          ? el(
              "span",
              { class: "actions" },
              el("button", { type: "button", class: "secondary", onclick: () => toggle(r), "aria-label": `${r.auto_deploy ? "Stop auto-deploy" : "Auto-deploy"} of ${r.full_name}` }, r.auto_deploy ? "Stop auto-deploy" : "Auto-deploy"),
              el("button", { type: "button", class: "secondary", onclick: () => unlink(r), "aria-label": `Unlink ${r.full_name}` }, "Unlink"),
            )
          : "",
      ]),
    ),
  );
}

async function toggle(repo) {
  try {
    await api("PATCH", nsPath(`/repos/${repo.id}`), { auto_deploy: !repo.auto_deploy });
    say(`${repo.full_name}: ${repo.auto_deploy ? "pushes no longer deploy" : "pushes deploy"}.`);
    await load();
  } catch (error) {
    sayError(error);
  }
}

async function unlink(repo) {
  if (!(await confirmAction(`Unlink ${repo.full_name}?`, "Pushes no longer deploy. Services keep running.", "Unlink"))) return;
  try {
    await api("DELETE", nsPath(`/repos/${repo.id}`));
    say(`${repo.full_name} unlinked.`);
    await load();
  } catch (error) {
    sayError(error);
  }
}

onSubmit($("#link-form"), async (values, form) => {
  const link = await api("POST", nsPath("/repos"), values);
  form.reset();
  say(`${link.full_name} linked: pushes to ${link.branch} deploy.`);
  await load();
});

load().catch(sayError);
