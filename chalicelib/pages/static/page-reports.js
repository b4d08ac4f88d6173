// Reports: the schedule (admins change frequency, hour, time zone, enabled; its channels are kept
// as they are), "Send now", and the reports sent with each channel's status and their CSV.
import { $, api, badge, ctx, el, empty, facts, nsPath, onSubmit, poll, replace, say, sayError, table, when } from "./dashboard.js";

const reportsPath = (rest = "") => nsPath(`/reports${rest}`);
const WORKING = ["gathered", "sending"];
let current = null;
let follower = null;

function channelText(c) {
  return c.type === "email" ? `email to ${c.to}` : `Slack ${c.webhook_url}`;
}

async function loadSchedule() {
  if (!$("#schedule")) return;
  const s = await api("GET", reportsPath("/schedule"));
  current = s;
  replace(
    "#schedule",
    el("dl", { class: "facts" }, facts([
      ["State", badge(s.enabled ? "enabled" : "disabled")],
      ["Frequency", s.frequency === "weekly" && s.weekday ? `weekly, on ${s.weekday}` : s.frequency],
      ["Goes out at", `${String(s.hour).padStart(2, "0")}:00 ${s.timezone}`],
      ["Next", s.next_due ? when(s.next_due) : "none (disabled)"],
      ["Channels", s.channels.length ? s.channels.map(channelText).join("; ") : "none"],
      ["Changed", [when(s.updated_at), s.updated_by ? ` by ${s.updated_by}` : ""]],
    ])),
    s.channels.some((c) => c.type === "slack")
      ? el("p", { class: "muted" }, "A Slack channel's webhook is a credential the API shows masked, so this form cannot resend it: change this schedule through the API or the CLI.")
      : null,
  );
  $("#schedule-frequency").value = s.frequency;
  $("#schedule-weekday").value = s.weekday || "monday";
  $("#schedule-hour").value = String(s.hour);
  $("#schedule-timezone").value = s.timezone;
  $("#schedule-enabled").checked = s.enabled;
  $("#schedule-form button[type=submit]").disabled = s.channels.some((c) => c.type === "slack");
}

// Answers whether a report is still being gathered or sent (its page follows it until it is not).
async function loadReports() {
  const { reports } = await api("GET", reportsPath());
  if (!reports.length) {
    replace("#reports", empty("No report yet", el("p", {}, "Reports appear here once the schedule sends one, or after Send now.")));
    return false;
  }
  replace(
    "#reports",
    table(
      "Reports, newest period first",
      ["Period", "Status", "Trigger", "Channels", "Sent", "Figures"],
      reports.map((r) => [
        [`${r.period.start.slice(0, 10)} to ${r.period.end.slice(0, 10)}`, el("div", { class: "muted" }, `${r.period.kind}, ${r.period.timezone}`)],
        badge(r.status),
        r.trigger,
        el("ul", { class: "plain" }, r.channels.map((c) => el("li", {}, `${c.type} ${c.target}: `, badge(c.status)))),
        when(r.created_at),
        [
          // the rendered report (sent ones: rendering comes before sending), in a tab of its own: the API
          // serves it under a sandboxing Content-Security-Policy
          ...(RENDERED.includes(r.status)
            ? [el("a", { href: r.html_url, target: "_blank", rel: "noopener", "aria-label": `View the report for ${r.period.start.slice(0, 10)}, rendered` }, "View"), " "]
            : []),
          el("a", { href: r.csv_url, download: `report-${r.id}.csv`, "aria-label": `CSV of the report for ${r.period.start.slice(0, 10)}` }, "CSV"),
        ],
      ]),
    ),
  );
  return reports.some((r) => WORKING.includes(r.status));
}

const RENDERED = ["sent", "partial"];

// Every 3 s while a report is being gathered or sent, for 2 minutes at most.
function follow() {
  if (follower) follower.stop();
  let rounds = 40;
  follower = poll(async () => (await loadReports()) && --rounds > 0 && 3);
}

onSubmit($("#schedule-form"), async (values) => {
  if (!current) return;
  const body = {
    frequency: values.frequency,
    timezone: values.timezone || "",
    hour: values.hour === undefined ? null : values.hour,
    enabled: Boolean(values.enabled),
    channels: current.channels.map((c) => ({ type: "email", to: c.to })),
  };
  if (values.frequency === "weekly") body.weekday = values.weekday;
  const s = await api("PUT", reportsPath("/schedule"), body);
  say(s.enabled ? `Schedule saved: ${s.frequency} at ${String(s.hour).padStart(2, "0")}:00 ${s.timezone}.` : "Schedule saved: no scheduled report.");
  await loadSchedule();
});

const sendNow = $("#send-now");
if (sendNow) {
  sendNow.addEventListener("click", async () => {
    sendNow.disabled = true;
    try {
      const r = await api("POST", reportsPath("/send"), {});
      say(`Report for ${r.period.start.slice(0, 10)} to ${r.period.end.slice(0, 10)}: ${r.status.replace(/_/g, " ")}.`);
      follow();
    } catch (error) {
      sayError(error);
    } finally {
      sendNow.disabled = false;
    }
  });
}

loadSchedule().catch(sayError);
loadReports()
  .then((working) => working && follow())
  .catch((error) => {
    replace("#reports", el("p", {}, "Reports could not be read. ", ctx.role ? `Your role is ${ctx.role}.` : ""));
    sayError(error);
  });
