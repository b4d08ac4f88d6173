// One deployment: steps with their times, the commit, the trigger, the reason, the version's logs;
// polled until it ends.
import { $, api, badge, ctx, el, enc, facts, poll, replace, say, svcPath, when } from "./dashboard.js";

function trigger(t) {
  return Object.entries(t || {})
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
}

function logs(lines) {
  if (lines === null || lines === undefined) return el("p", { class: "muted" }, "Logs are shown to members and up.");
  if (!lines.length) return el("p", { class: "muted" }, "No output yet.");
  return el("pre", { tabindex: "0", "aria-label": "Logs" }, lines.map((l) => `${l.timestamp || ""} ${l.message ?? JSON.stringify(l)}\n`).join(""));
}

let last = null;

async function load() {
  const dep = await api("GET", svcPath(`/deployments/${enc(ctx.dep)}`));
  replace("#dep-status", badge(dep.status));
  replace(
    "#dep-facts",
    facts([
      ["Status", badge(dep.status)],
      ["Commit", el("span", { class: "mono" }, dep.commit || "not known yet")],
      ["Ref", dep.ref],
      ["Source", el("span", { class: "mono" }, dep.source)],
      ["Trigger", trigger(dep.trigger)],
      ["Created", when(dep.created_at)],
      dep.deadline ? ["Deadline", when(dep.deadline)] : null,
      dep.rollback_of ? ["Rollback of", el("a", { href: `/namespaces/${enc(ctx.ns)}/services/${enc(ctx.svc)}/deployments/${enc(dep.rollback_of)}` }, dep.rollback_of)] : null,
      dep.reason ? ["Reason", dep.reason] : null,
    ]),
  );
  replace(
    "#dep-steps",
    dep.steps.map((s) =>
      el(
        "li",
        {},
        el("span", {}, badge(s.status)),
        el("span", {}, el("strong", {}, s.name), " — started ", when(s.started_at), s.ended_at ? [", ended ", when(s.ended_at)] : null, s.detail ? el("div", { class: "muted" }, s.detail) : null),
      ),
    ),
  );
  replace("#dep-logs", logs(dep.logs));
  const done = dep.finished; // the API says when a deployment changes no more
  $("#dep-live").textContent = done ? "Finished." : "Live: refreshed every 2 seconds until it ends.";
  if (last && last !== dep.status) say(`Deployment status: ${dep.status.replace(/_/g, " ")}.`, done && dep.status !== "succeeded" ? "error" : "ok");
  last = dep.status;
  return !done;
}

poll(load, 2);
