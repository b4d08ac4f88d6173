// Namespaces: the caller's, with status and role; a newcomer is told to onboard a team.
import { api, badge, el, empty, enc, replace, sayError, table } from "./dashboard.js";

async function load() {
  const me = await api("GET", "/v1/me");
  if (!me.namespaces.length) {
    replace(
      "#namespaces",
      empty(
        "No namespace yet",
        el("p", {}, "A namespace is one of your organization's GitHub teams on the platform. Onboard a team to deploy its services."),
        el("p", {}, el("a", { class: "button", href: "/onboard" }, "Onboard a GitHub team")),
        el("p", { class: "muted" }, "Expecting one? Ask an owner of your GitHub organization to onboard your team, or to add you as a viewer."),
      ),
    );
    return;
  }
  replace(
    "#namespaces",
    table(
      "Namespaces you belong to",
      ["Namespace", "Status", "Your role", "GitHub team", "Region"],
      me.namespaces.map((n) => [
        el("a", { href: `/namespaces/${enc(n.id)}` }, n.id),
        badge(n.status),
        n.role,
        `${n.github_org}/${n.github_team}`,
        n.region,
      ]),
    ),
  );
}

load().catch(sayError);
