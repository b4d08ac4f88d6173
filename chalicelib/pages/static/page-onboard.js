// Onboarding a team: the form (regions and plans from the API), then the namespace's progress,
// polled until it is active or failed.
import { $, api, badge, ctx, el, enc, onSubmit, poll, replace, sayError, when } from "./dashboard.js";

async function options() {
  const [regions, plans] = await Promise.all([api("GET", "/v1/regions"), api("GET", "/v1/plans")]);
  // an active region with no healthy cluster cannot place a namespace: not offered
  const active = regions.regions.filter((r) => r.status === "active" && r.health !== "unavailable");
  replace(
    "#region",
    active.length
      ? active.map((r) => el("option", { value: r.name }, `${r.display_name} (${r.name}, ${r.cloud})`))
      : [el("option", { value: "" }, "No region is available")],
  );
  replace(
    "#plan",
    plans.plans.map((p) => el("option", { value: p.name, selected: p.name === "starter" }, `${p.display_name} (${p.name})`)),
  );
}

function step(label, state, detail) {
  return el("li", {}, el("span", {}, badge(state)), el("span", {}, el("strong", {}, label), detail ? el("span", {}, " — ", detail) : null));
}

function render(ns) {
  const failed = ns.status === "failed";
  const active = ns.status === "active";
  const steps = [
    step("Team claimed, namespace created", "succeeded", when(ns.created_at)),
    step(
      "Billing account and placement on a cluster",
      ns.cluster_id ? "succeeded" : failed ? "failed" : "in_progress",
      ns.cluster_id ? `cluster ${ns.cluster_id} in ${ns.region}` : null,
    ),
    step(
      "Runtime namespace, quota, members and their runtime accounts",
      active ? "succeeded" : failed ? "failed" : ns.cluster_id ? "in_progress" : "pending",
    ),
    step("Ready", active ? "active" : failed ? "failed" : "pending", failed ? ns.failure_reason || "failed" : null),
  ];
  replace("#progress-steps", steps);
  if (active) {
    replace(
      "#progress-next",
      "Done. Next: ",
      el("a", { href: `/namespaces/${enc(ns.id)}` }, `deploy a service in ${ns.id}`),
      ".",
    );
  } else if (failed) {
    replace("#progress-next", "The onboarding was undone; fix what the reason says and onboard the team again.");
  } else {
    replace("#progress-next", "This takes a few seconds.");
  }
  return !active && !failed;
}

function follow(id) {
  $("#progress").hidden = false;
  $("#progress-ns").textContent = id;
  poll(async () => render(await api("GET", `/v1/namespaces/${enc(id)}`)), 1);
}

onSubmit($("#onboard-form"), async (values) => {
  const ns = await api("POST", "/v1/namespaces", values);
  follow(ns.id);
  $("#progress").focus?.();
});

options().catch(sayError);
const following = new URLSearchParams(location.search).get("ns");
if (following && ctx.page === "onboard") follow(following);
