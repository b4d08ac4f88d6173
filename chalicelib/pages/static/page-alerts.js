// Alerts: the channels (admins add one and send it a test message, which says what really
// happened), the rules (read-only here), and the alerts sent with each channel's delivery status.
import { $, api, badge, ctx, el, empty, enc, facts, nsPath, onSubmit, replace, say, sayError, table, when } from "./dashboard.js";

const isAdmin = ["admin", "owner"].includes(ctx.role);
const alertsPath = (rest = "") => nsPath(`/alerts${rest}`);
let names = {};

async function loadChannels() {
  const { channels } = await api("GET", alertsPath("/channels"));
  names = Object.fromEntries(channels.map((c) => [c.id, c.name]));
  replace(
    "#channels",
    table(
      `Alert channels of ${ctx.ns}`,
      ["Name", "Kind", "Target", "State", "Per hour", "", "Test result"],
      channels.map((c) => {
        const outcome = el("span", { id: `test-${c.id}`, class: "muted", "aria-live": "polite" }, "");
        return [
          c.builtin ? [c.name, el("span", { class: "muted" }, " (built in)")] : c.name,
          c.kind,
          el("code", {}, c.target),
          badge(c.enabled ? "enabled" : "disabled"),
          c.rate_limit === null || c.rate_limit === undefined ? "—" : String(c.rate_limit),
          isAdmin
            ? el("button", { type: "button", class: "secondary", onclick: (e) => test(c, e.currentTarget, outcome), "aria-label": `Test ${c.name}` }, "Test")
            : "",
          outcome,
        ];
      }),
    ),
  );
}

async function test(channel, button, outcome) {
  button.disabled = true;
  replace(outcome, "sending…");
  try {
    const result = await api("POST", alertsPath(`/channels/${enc(channel.id)}/test`));
    replace(
      outcome,
      result.results.map((r) => el("div", {}, badge(r.status), r.error ? ` ${r.error}` : "", r.target && r.target !== channel.target ? ` (${r.target})` : "")),
    );
    say(result.delivered ? `Test message to ${channel.name}: delivered.` : `Test message to ${channel.name}: not delivered.`, result.delivered ? "ok" : "error");
  } catch (error) {
    replace(outcome, "");
    sayError(error);
  } finally {
    button.disabled = false;
  }
}

async function loadRules() {
  const rules = await api("GET", alertsPath("/rules"));
  replace(
    "#rules",
    rules.default ? el("p", { class: "muted" }, "These are the defaults: the namespace has set no rules of its own.") : null,
    rules.rules.length
      ? table(
          "Which events go to which channels",
          ["Events", "Channels", "Severity", "Repeat after (s)", "Group for (s)", "State"],
          rules.rules.map((r) => [
            r.events.join(", "),
            r.channels.map((id) => names[id] || id).join(", "),
            r.severity,
            String(r.repeat_interval),
            String(r.group_window),
            badge(r.enabled ? "enabled" : "disabled"),
          ]),
        )
      : empty("No rule", el("p", {}, "No event is alerted.")),
    el("p", { class: "muted" }, "Rules are changed through the API (PUT /v1/namespaces/{ns}/alerts/rules) or the CLI."),
  );
}

async function loadHistory() {
  const { alerts } = await api("GET", alertsPath("?limit=50"));
  if (!alerts.length) {
    replace("#history", empty("No alert yet", el("p", {}, "Alerts appear here when an event matches a rule.")));
    return;
  }
  replace(
    "#history",
    table(
      "The last alerts, newest first",
      ["When", "Alert", "Severity", "Deliveries"],
      alerts.map((a) => [
        when(a.occurred_at),
        [el("strong", {}, a.title), a.occurrences > 1 ? el("span", { class: "muted" }, ` (${a.occurrences} times)`) : null, el("div", { class: "muted" }, a.event_type)],
        a.severity,
        el(
          "ul",
          { class: "plain" },
          a.channels.map((c) =>
            el("li", {}, `${names[c.channel_id] || c.channel_id}: `, badge(c.status), c.attempts > 1 ? ` after ${c.attempts} attempts` : "", c.last_error ? el("div", { class: "muted" }, c.last_error) : null),
          ),
        ),
      ]),
    ),
  );
}

onSubmit($("#channel-form"), async (values, form) => {
  const channel = await api("POST", alertsPath("/channels"), values);
  form.reset();
  replace(
    "#channel-secret",
    channel.secret
      ? el(
          "div",
          { class: "panel" },
          el("p", {}, `The signing secret of ${channel.name}, shown this once:`),
          el("dl", { class: "facts" }, facts([["Secret", el("code", {}, channel.secret)]])),
        )
      : null,
  );
  say(`Channel ${channel.name} added. Press Test to send it a message.`);
  await loadChannels();
});

async function load() {
  await loadChannels();
  await Promise.all([loadRules(), loadHistory()]);
}

load().catch((error) => {
  replace("#channels", el("p", {}, "Alerts are shown to the namespace's members, admins and owners. ", ctx.role ? `Your role is ${ctx.role}.` : ""));
  replace("#rules", null);
  replace("#history", null);
  sayError(error);
});
