// Plans: base price, included quantities, graduated prices and quotas, from GET /v1/plans.
import { api, dollars, el, replace, sayError, table } from "./dashboard.js";

function tiers(list, unit) {
  return el(
    "ul",
    {},
    list.map((t, i) => {
      const from = i === 0 ? "0" : list[i - 1].up_to;
      const range = t.up_to === null ? `over ${from}` : `${from}–${t.up_to}`;
      const price = Number(t.unit_amount_decimal) === 0 ? "included" : `${t.unit_amount_decimal}¢ per ${unit}`;
      return el("li", {}, `${range}: ${price}${t.flat_amount ? ` + ${dollars(t.flat_amount)}` : ""}`);
    }),
  );
}

async function load() {
  const data = await api("GET", "/v1/plans");
  const units = Object.fromEntries(data.meters.map((m) => [m.name, m.unit]));
  const names = Object.fromEntries(data.meters.map((m) => [m.name, m.display_name]));
  replace(
    "#plans",
    data.plans.map((p) =>
      el(
        "section",
        { class: "panel", "aria-labelledby": `plan-${p.name}` },
        el("h2", { id: `plan-${p.name}` }, `${p.display_name}: ${dollars(p.base_price, data.currency)} a month`),
        el("p", {}, `Quota: ${p.quota.cpu_millicores} millicores of CPU, ${p.quota.memory_mib} MiB of memory, ${p.quota.ephemeral_storage_mib} MiB of disk.`),
        table(
          null,
          ["Meter", "Prices"],
          Object.entries(p.prices).map(([meter, list]) => [names[meter] || meter, tiers(list, units[meter] || "unit")]),
        ),
      ),
    ),
  );
}

load().catch(sayError);
