// A service: its status and instances, its deployments (live while one runs), redeploy, rollback and
// deploy with confirmation, config vars and secrets (a secret's value is never shown), its logs.
import {
  $, api, badge, confirmAction, ctx, el, empty, enc, facts, onSubmit, poll, replace, say, sayError, short, svcPath, table, when,
} from "./dashboard.js";

const canDeploy = ["member", "admin", "owner"].includes(ctx.role);
const depLink = (d) => el("a", { href: `/namespaces/${enc(ctx.ns)}/services/${enc(ctx.svc)}/deployments/${enc(d.id)}` }, short(d.id.toLowerCase()));
let service = null;
let deployments = [];
const seen = new Map(); // deployment id -> status, to announce changes

function announce() {
  const fresh = seen.size > 0;
  for (const d of deployments) {
    if (fresh && seen.get(d.id) !== d.status) say(`Deployment ${d.id} (${short(d.commit)}): ${d.status.replace(/_/g, " ")}.`, ["failed", "rolled_back"].includes(d.status) ? "error" : "ok");
    seen.set(d.id, d.status);
  }
}

function current() {
  return deployments.find((d) => service && d.id === service.current_deployment_id) || null;
}

async function load() {
  [service, { deployments }] = await Promise.all([api("GET", svcPath()), api("GET", svcPath("/deployments"))]);
  replace("#svc-status", badge(service.status));
  replace(
    "#svc-facts",
    facts([
      ["Status", badge(service.status)],
      ["Current commit", el("span", { class: "mono", title: service.current_commit || "" }, short(service.current_commit))],
      ["Address", service.address ? el("span", { class: "mono" }, service.address) : "—"],
      ["Instances", service.instances.length ? el("ul", {}, service.instances.map((i) => el("li", {}, el("span", { class: "mono" }, short(i.version)), " ", badge(i.status), i.started_at ? [" since ", when(i.started_at)] : null))) : "none"],
      ["Auto-deploy", service.auto_deploy_paused ? badge("paused") : service.auto_deploy ? badge("enabled") : "off"],
    ]),
  );
  const resume = $("#auto-deploy");
  if (resume) resume.hidden = !service.auto_deploy_paused;
  const source = $("#deploy-source");
  if (source && !source.value && deployments.length) source.value = deployments[0].source;
  replace(
    "#deployments",
    deployments.length
      ? table(
          `Deployments of ${ctx.svc}, newest first`,
          ["Deployment", "Status", "Commit", "Trigger", "Created", "Reason"],
          deployments.map((d) => [
            depLink(d),
            badge(d.status),
            el("span", { class: "mono", title: d.commit || "" }, short(d.commit)),
            [d.trigger.kind || "", d.trigger.actor ? ` by ${d.trigger.actor}` : ""].join(""),
            when(d.created_at),
            d.reason || (d.id === service.current_deployment_id ? "current" : ""),
          ]),
        )
      : empty("No deployment yet", el("p", {}, "Deploy a commit below.")),
  );
  announce();
  const running = deployments.some((d) => !d.finished);
  $("#deployments-live").textContent = running
    ? "Live: a deployment is running; refreshed every 2 seconds."
    : "No deployment is running. Refreshed every 5 seconds: a push shows here as it deploys.";
  return running ? 2 : 5;
}

let live = null;
function follow() {
  if (live) live.stop();
  live = poll(load, 2);
}

async function deploy(body, what) {
  const dep = await api("POST", svcPath("/deployments"), body);
  await load();
  say(`${what}: deployment ${dep.id} is ${dep.status}.`);
  follow();
}

if (canDeploy) {
  $("#redeploy").addEventListener("click", async () => {
    const cur = current();
    if (!cur || !service.current_commit) return say("There is no current deployment to redeploy.", "error");
    if (!(await confirmAction(`Redeploy ${ctx.svc}?`, `Commit ${short(service.current_commit)} is built and started again; the running version keeps answering until the new one is healthy.`, "Redeploy"))) return;
    deploy({ source: cur.source, commit: service.current_commit }, "Redeploy").catch(sayError);
  });
  $("#rollback").addEventListener("click", async () => {
    if (!(await confirmAction(`Roll back ${ctx.svc}?`, "The previous good deployment is started again from its kept artifact, and auto-deploy is paused until you resume it.", "Roll back"))) return;
    try {
      const answer = await api("POST", svcPath("/rollback"), {});
      await load();
      say(answer.message);
      follow();
    } catch (error) {
      sayError(error);
    }
  });
  $("#auto-deploy").addEventListener("click", async () => {
    try {
      await api("POST", svcPath("/auto-deploy"), { enabled: true });
      say("Auto-deploy resumed: the next push deploys.");
      await load();
    } catch (error) {
      sayError(error);
    }
  });
  onSubmit($("#deploy-form"), async (values) => {
    if (!(await confirmAction(`Deploy ${ctx.svc}?`, `${values.ref || "HEAD"} of ${values.source || ""} is deployed.`, "Deploy"))) return;
    await deploy(values, "Deploy");
  });
  onSubmit($("#config-form"), async (values, form) => {
    const key = values.key || "";
    if (!key) throw new Error("give the variable a name");
    const answer = await api("PUT", svcPath(`/config/${enc(key)}`), { value: values.value || "", secret: Boolean(values.secret) });
    form.reset();
    showConfig(answer.vars);
    say(`${key} saved${answer.redeploy ? `; redeploying (deployment ${answer.redeploy.id})` : ""}.`);
    follow();
  });
  $("#logs-refresh").addEventListener("click", () => logs().catch(sayError));
}

function showConfig(vars) {
  replace(
    "#config",
    vars.length
      ? table(
          `Config vars of ${ctx.svc}`,
          ["Name", "Value", ""],
          vars.map((v) => [
            el("span", { class: "mono" }, v.key),
            v.secret ? el("span", { class: "muted" }, "secret: set, never shown") : el("span", { class: "mono" }, v.value ?? ""),
            el("button", { type: "button", class: "secondary", onclick: () => unset(v.key), "aria-label": `Delete ${v.key}` }, "Delete"),
          ]),
        )
      : el("p", { class: "muted" }, "No config var yet."),
  );
}

async function unset(key) {
  if (!(await confirmAction(`Delete ${key}?`, "The service is redeployed without it.", "Delete"))) return;
  try {
    const answer = await api("DELETE", svcPath(`/config/${enc(key)}`));
    showConfig(answer.vars);
    say(`${key} deleted; redeploying.`);
    follow();
  } catch (error) {
    sayError(error);
  }
}

async function logs() {
  const answer = await api("GET", svcPath("/logs?tail=200"));
  replace(
    "#logs",
    answer.lines.length
      ? el("pre", { tabindex: "0", "aria-label": `Logs of ${ctx.svc}` }, answer.lines.map((l) => `${l.timestamp || ""} ${l.version ? `[${short(l.version)}] ` : ""}${l.message}\n`).join(""))
      : el("p", { class: "muted" }, "No output yet."),
    answer.since_ignored ? el("p", { class: "muted" }, answer.since_ignored) : null,
  );
}

follow();
if (canDeploy) {
  api("GET", svcPath("/config")).then((c) => showConfig(c.vars), sayError);
  logs().catch(sayError);
}
