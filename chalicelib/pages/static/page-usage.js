// Usage by meter and service over a chosen period: a bar chart per meter (stacked by service, each
// bar titled with its numbers) and the same numbers as tables.
import { $, amount, api, el, empty, formValues, nsPath, num, replace, sayError, table } from "./dashboard.js";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f3a8a", "#b45309", "#047857", "#9d174d", "#4338ca", "#0f766e", "#7c2d12", "#374151"];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function range(values) {
  const period = values.period || "month";
  if (period === "month") return {};
  if (period === "custom") {
    const out = {};
    const utc = (v) => (v.length === 16 ? `${v}:00Z` : `${v}Z`); // datetime-local: read as UTC
    if (values.from) out.from = utc(values.from);
    if (values.to) out.to = utc(values.to);
    return out;
  }
  const hours = { "24h": 24, "7d": 24 * 7, "30d": 24 * 30 }[period];
  const to = new Date();
  return { from: new Date(to.getTime() - hours * 3600 * 1000).toISOString(), to: to.toISOString() };
}

function buckets(from, to, granularity) {
  const step = (granularity === "day" ? 24 : 1) * 3600 * 1000;
  const out = [];
  for (let t = new Date(from).getTime(); t < new Date(to).getTime() && out.length < 1000; t += step) out.push(t);
  return out;
}

function label(t, granularity) {
  const d = new Date(t);
  return granularity === "day" ? d.toISOString().slice(5, 10) : `${d.toISOString().slice(5, 10)} ${d.toISOString().slice(11, 13)}h`;
}

function chart(meter, unit, points, times, services, granularity) {
  const width = 720;
  const height = 220;
  const left = 48;
  const bottom = 24;
  const plotW = width - left - 8;
  const plotH = height - bottom - 8;
  const byTime = new Map(times.map((t) => [t, new Map()]));
  for (const p of points) {
    const t = new Date(p.start).getTime();
    if (byTime.has(t)) byTime.get(t).set(p.service ?? "", Number(p.quantity));
  }
  const totals = times.map((t) => [...byTime.get(t).values()].reduce((a, b) => a + b, 0));
  const max = Math.max(...totals, 0) || 1;
  const barW = plotW / Math.max(times.length, 1);
  const bars = [];
  times.forEach((t, i) => {
    let y = 8 + plotH;
    services.forEach((svc, si) => {
      const q = byTime.get(t).get(svc) || 0;
      if (!q) return;
      const h = (q / max) * plotH;
      y -= h;
      bars.push(
        svg(
          "rect",
          { x: (left + i * barW + barW * 0.1).toFixed(2), y: y.toFixed(2), width: Math.max(barW * 0.8, 0.5).toFixed(2), height: h.toFixed(2), fill: COLOURS[si % COLOURS.length] },
          svg("title", {}, `${label(t, granularity)} UTC, ${svc || "no service"}: ${q} ${unit}`),
        ),
      );
    });
  });
  const every = Math.ceil(times.length / 8);
  const ticks = times.map((t, i) => (i % every === 0 ? svg("text", { x: (left + i * barW).toFixed(2), y: height - 6 }, label(t, granularity)) : null)).filter(Boolean);
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": `${meter} per ${granularity}, stacked by service; the table below has the numbers` },
    svg("line", { x1: left, y1: 8 + plotH, x2: width - 8, y2: 8 + plotH, class: "axis" }),
    svg("line", { x1: left, y1: 8, x2: left, y2: 8 + plotH, class: "axis" }),
    svg("text", { x: 2, y: 16 }, String(+max.toPrecision(4))),
    svg("text", { x: 2, y: 8 + plotH }, "0"),
    ...bars,
    ...ticks,
  );
}

async function load() {
  const values = formValues($("#usage-filter"));
  const query = new URLSearchParams({ granularity: values.granularity || "day", ...range(values) });
  const [usage, plans] = await Promise.all([api("GET", nsPath(`/usage?${query}`)), api("GET", "/v1/plans")]);
  const meters = Object.fromEntries(plans.meters.map((m) => [m.name, m]));
  const times = buckets(usage.from, usage.to, usage.granularity);
  const sections = [
    el("p", { class: "muted" }, `From ${usage.from} to ${usage.to} (UTC), by ${usage.granularity}.`),
  ];
  if (!usage.series.length) {
    sections.push(
      empty(
        "No usage in this period",
        el("p", {}, "Usage is counted every hour from the services' instances and requests, and the members (seats). Deploy a service, and it shows here after the next hourly run."),
      ),
    );
  }
  for (const total of usage.totals) {
    const meter = meters[total.meter] || { display_name: total.meter, unit: "unit", aggregation: "sum" };
    const points = usage.series.filter((p) => p.meter === total.meter);
    const services = [...new Set(points.map((p) => p.service ?? ""))].sort();
    const perService = services.map((svc) => {
      const qs = points.filter((p) => (p.service ?? "") === svc).map((p) => Number(p.quantity));
      return [svc || "(no service)", num(meter.aggregation === "max" ? Math.max(...qs) : qs.reduce((a, b) => a + b, 0))];
    });
    const id = `meter-${total.meter}`;
    const heading = el("h2", { id }, `${meter.display_name}: ${amount(total.quantity, meter.unit)}${meter.aggregation === "max" ? " (maximum)" : ""}`);
    if (!points.length) {
      sections.push(el("section", { class: "panel", "aria-labelledby": id }, heading, el("p", { class: "muted" }, "Nothing in this period.")));
      continue;
    }
    sections.push(
      el(
        "section",
        { class: "panel", "aria-labelledby": id },
        heading,
        chart(meter.display_name, meter.unit, points, times, services, usage.granularity),
        el("ul", { class: "legend", "aria-label": "Services" }, services.map((svc, i) => el("li", {}, svg("svg", { class: "swatch", width: 12, height: 12, "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, fill: COLOURS[i % COLOURS.length] })), svc || "(no service)"))),
        table(`${meter.display_name} by service`, ["Service", `Quantity (${meter.unit})`], perService, { numeric: [1] }),
      ),
    );
  }
  replace("#usage", sections);
}

$("#usage-period").addEventListener("change", (event) => {
  const custom = event.target.value === "custom";
  $("#usage-custom-from").hidden = !custom;
  $("#usage-custom-to").hidden = !custom;
});
$("#usage-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  load().catch(sayError);
});
load().catch(sayError);
