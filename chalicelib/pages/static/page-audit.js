// The audit log, newest first, filtered by actor, action and time.
import { $, api, badge, el, empty, formValues, nsPath, replace, sayError, table, when } from "./dashboard.js";

async function load() {
  const values = formValues($("#audit-filter"));
  const query = new URLSearchParams({ limit: "200" });
  if (values.actor) query.set("actor", values.actor);
  if (values.action) query.set("action", values.action);
  if (values.since) query.set("since", new Date(values.since).toISOString());
  const { entries } = await api("GET", nsPath(`/audit?${query}`));
  replace(
    "#audit",
    entries.length
      ? table(
          "Audit entries, newest first",
          ["When", "Actor", "Action", "Target", "Outcome", "From"],
          entries.map((e) => [
            when(e.at),
            e.actor,
            e.action,
            el("span", { class: "mono" }, e.target),
            e.outcome === "ok" ? badge("ok") : [badge("failed"), " ", e.outcome],
            [e.source_ip || "", e.user_agent ? el("div", { class: "muted" }, e.user_agent) : null],
          ]),
        )
      : empty("Nothing recorded", el("p", {}, "No entry matches. Changes in the namespace appear here.")),
  );
}

$("#audit-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  load().catch(sayError);
});
load().catch(sayError);
