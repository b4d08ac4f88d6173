// A namespace's services: status, current commit, instances; deploy one; the exact commands when
// there is none yet.
import { $, api, badge, ctx, el, empty, enc, facts, href, nsPath, onSubmit, poll, replace, short, table, when } from "./dashboard.js";

function instances(list) {
  if (!list.length) return "none";
  return el("ul", {}, list.map((i) => el("li", {}, short(i.version), " ", badge(i.status))));
}

function newcomer(ns) {
  const local = ctx.stage === "local";
  // On the local cloud the commands run from the platform's checkout, against this very address.
  const cli = local ? ".venv/bin/platform" : "platform";
  const apiUrl = local && location.origin !== "http://127.0.0.1:8000" ? ` --api-url ${location.origin}` : "";
  const init = `${cli} init${local ? " --local" : ""}${apiUrl} --login ${ctx.login} --namespace ${ns} --yes`;
  const deploy = local
    ? `examples/make-example-repo.sh /tmp/hello      # the example service, as a git repository\n${cli} deploy hello --source /tmp/hello --ref HEAD --wait`
    : `${cli} deploy <service> --source https://github.com/<org>/<repo> --ref HEAD --wait`;
  return empty(
    "No service yet",
    el("p", {}, "Deploy one from a git repository holding a micro.yaml: with the form below, or with the platform CLI:"),
    el("pre", {}, `${init}\n${deploy}`),
    el("p", {}, "Or link a repository under ", el("a", { href: `/namespaces/${enc(ns)}/repos` }, "Repositories"), " and push: every push deploys the services it changed."),
    local
      ? el("p", { class: "muted" }, "On the local cloud, from the platform's checkout: ", el("code", {}, "examples/make-example-repo.sh /tmp/hello"), " makes the example a git repository; then deploy the service hello with the source /tmp/hello in the form below.")
      : null,
  );
}

// The list does not ask the runtime for instances (its answer's "instances" is empty): each service's
// own read does, for the first services of the page; beyond them, the service's page shows them.
const INSTANCES_OF_FIRST = 20;

async function load() {
  const [ns, services] = await Promise.all([api("GET", nsPath()), api("GET", nsPath("/services"))]);
  replace(
    "#ns-facts",
    facts([
      ["Status", badge(ns.status)],
      ["GitHub team", `${ns.github_org}/${ns.github_team}`],
      ["Region", ns.region],
      ["Plan", ns.plan],
      ["Your role", ctx.role],
      ["Created", when(ns.created_at)],
      ns.failure_reason ? ["Failure", ns.failure_reason] : null,
    ]),
  );
  if (!services.services.length) {
    replace("#services", newcomer(ctx.ns));
    return 5;
  }
  const details = await Promise.all(
    services.services.map((s, i) => (i < INSTANCES_OF_FIRST ? api("GET", nsPath(`/services/${enc(s.name)}`)).catch(() => null) : null)),
  );
  replace(
    "#services",
    table(
      `Services in ${ctx.ns}`,
      ["Service", "Status", "Current commit", "Instances", "Address"],
      services.services.map((s, i) => [
        el("a", { href: `/namespaces/${enc(ctx.ns)}/services/${enc(s.name)}` }, s.name),
        badge(s.status),
        el("span", { class: "mono", title: s.current_commit || "" }, short(s.current_commit)),
        details[i] ? instances(details[i].instances || []) : el("a", { href: `/namespaces/${enc(ctx.ns)}/services/${enc(s.name)}` }, "see the service"),
        s.address ? el("span", { class: "mono" }, s.address) : "—",
      ]),
    ),
  );
  return services.services.some((s) => !["running", "stopped", "failed", "error"].includes(s.status)) ? 2 : 5;
}

poll(load, 3);

onSubmit($("#deploy-form"), async (values) => {
  const { service, ...body } = values;
  if (!service) throw new Error("name the service (as in its micro.yaml)");
  const dep = await api("POST", nsPath(`/services/${enc(service || "")}/deployments`), body);
  location.assign(href(`/namespaces/${enc(ctx.ns)}/services/${enc(dep.service)}/deployments/${enc(dep.id)}`));
});
