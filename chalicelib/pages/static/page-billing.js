// Billing: the plan, this period's invoice preview (and Stripe's beside it), the forecast, the budget
// form, the invoices from Stripe and a link to Stripe's billing portal.
import { $, amount, api, badge, ctx, describe, dollars, el, empty, facts, href, nsPath, num, onSubmit, replace, say, sayError, table } from "./dashboard.js";

function budgetState(budget, currency) {
  if (!budget) return el("p", {}, "No budget is set: usage charges are not capped.");
  return el(
    "div",
    {},
    el("dl", { class: "facts" }, facts([
      ["State", badge(budget.state)],
      ["Spent this period", `${dollars(budget.spent, currency)} of ${dollars(budget.monthly_limit, currency)} (${budget.percent.toFixed(1)} %)`],
      ["Thresholds crossed", budget.crossed.length ? budget.crossed.map((t) => `${t} %`).join(", ") : "none"],
      ["Hard cap", budget.hard_cap ? "on: new deploys stop at 100 %" : "off"],
    ])),
    el("label", { for: "budget-progress" }, "Spent, in percent of the limit"),
    el("progress", { id: "budget-progress", max: "100", value: String(Math.min(budget.percent, 100)) }, `${budget.percent.toFixed(1)} %`),
  );
}

// Stripe's preview of the invoice that closes the period, beside the ledger's subtotal.
function providerPreview(provider, subtotal, currency) {
  if (!provider) return null;
  if (provider.unavailable) return el("p", { class: "muted", id: "provider-preview" }, `Stripe's preview could not be read: ${provider.unavailable}`);
  if (!provider.invoice) return el("p", { class: "muted", id: "provider-preview" }, "Stripe has no upcoming invoice for this namespace.");
  const inv = provider.invoice;
  const diff = provider.difference || 0;
  return el(
    "div",
    { id: "provider-preview" },
    el("dl", { class: "facts" }, facts([
      ["Stripe's preview", dollars(inv.total, inv.currency)],
      ["Ledger's subtotal", dollars(subtotal, currency)],
      ["Difference", diff === 0 ? "none" : `${diff > 0 ? "+" : "\u2212"}${dollars(Math.abs(diff), inv.currency)} (Stripe minus the ledger)`],
      provider.subscription ? ["Subscription", badge(provider.subscription.status)] : null,
    ])),
  );
}

function invoiceRow(inv) {
  const ledger = inv.ledger ? dollars(inv.ledger.subtotal, inv.currency) : el("span", { class: "muted" }, "—");
  return [
    inv.id || "preview",
    `${inv.period.start.slice(0, 10)} to ${inv.period.end.slice(0, 10)}`,
    badge(inv.status),
    dollars(inv.total, inv.currency),
    dollars(inv.amount_due, inv.currency),
    ledger,
    inv.hosted_invoice_url && /^https?:\/\//.test(inv.hosted_invoice_url)
      ? el("a", { href: inv.hosted_invoice_url, rel: "noopener noreferrer" }, "View invoice")
      : el("span", { class: "muted" }, "—"),
  ];
}

async function loadInvoices() {
  try {
    const { invoices } = await api("GET", nsPath("/invoices"));
    replace(
      "#invoices",
      invoices.length
        ? table("Invoices", ["Invoice", "Period", "Status", "Total", "Due", "Ledger", "Stripe"], invoices.map(invoiceRow), { numeric: [3, 4, 5] })
        : empty("No invoice yet", el("p", {}, "Stripe issues the first invoice when the first period closes.")),
    );
  } catch (error) {
    replace("#invoices", el("p", { class: "muted" }, `Invoices could not be read: ${describe(error)}`));
  }
}

$("#portal").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    const { url } = await api("GET", nsPath("/billing/portal"));
    if (!/^https?:\/\//.test(url)) throw new Error("the billing portal's address is not a web address");
    location.assign(href(url));
  } catch (error) {
    sayError(error);
    button.disabled = false;
  }
});

async function load() {
  const bill = await api("GET", nsPath("/billing"));
  const c = bill.currency;
  replace(
    "#billing",
    el(
      "section",
      { class: "panel", "aria-labelledby": "invoice-title" },
      el("h2", { id: "invoice-title" }, `Invoice preview for ${bill.period.id}`),
      el("dl", { class: "facts" }, facts([
        ["Plan", el("a", { href: "/plans" }, bill.plan)],
        ["Period", `${bill.period.start.slice(0, 10)} to ${bill.period.end.slice(0, 10)} (UTC)`],
        ["State", badge(bill.state)],
      ])),
      table(
        "Line items so far",
        ["Item", "Quantity", "Amount"],
        [
          ...bill.line_items.map((li) => [li.description, li.kind === "base" ? "" : amount(li.quantity, li.unit), dollars(li.amount, c)]),
          [el("strong", {}, "Subtotal"), "", el("strong", {}, dollars(bill.subtotal, c))],
        ],
        { numeric: [1, 2] },
      ),
      providerPreview(bill.provider, bill.subtotal, c),
    ),
    el(
      "section",
      { class: "panel", "aria-labelledby": "forecast-title" },
      el("h2", { id: "forecast-title" }, `Forecast for the whole month: ${dollars(bill.forecast.subtotal, c)}`),
      el("p", { class: "muted" }, `At the run rate of the last ${num(bill.forecast.elapsed_hours, 1)} hours; usage charges ${dollars(bill.forecast.usage, c)}.`),
      bill.forecast.line_items.length
        ? table("Forecast by meter", ["Meter", "Quantity", "Amount"], bill.forecast.line_items.map((f) => [f.meter, num(f.quantity), dollars(f.amount, c)]), { numeric: [1, 2] })
        : null,
    ),
  );
  replace("#budget-state", budgetState(bill.budget, c));
  if (bill.budget) {
    $("#budget-limit").value = (bill.budget.monthly_limit / 100).toFixed(2);
    $("#budget-thresholds").value = bill.budget.thresholds.join(", ");
    $("#budget-cap").checked = bill.budget.hard_cap;
  }
}

onSubmit($("#budget-form"), async (values) => {
  const limit = Math.round(parseFloat(values.monthly_limit || "0") * 100);
  const thresholds = String(values.thresholds || "")
    .split(/[,\s]+/)
    .filter(Boolean)
    .map((t) => Number(t));
  const budget = await api("PUT", nsPath("/billing/budget"), { monthly_limit: limit, thresholds, hard_cap: Boolean(values.hard_cap) });
  say(`Budget saved: ${dollars(budget.monthly_limit)} a month${budget.hard_cap ? ", with a hard cap" : ""}.`);
  await load();
});

loadInvoices();
load().catch((error) => {
  replace("#billing", el("p", {}, "Billing is shown to the namespace's admins and owners. ", ctx.role ? `Your role is ${ctx.role}.` : ""));
  say(error.message, "error");
});
