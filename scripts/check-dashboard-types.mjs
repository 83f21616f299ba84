#!/usr/bin/env node
// Type-checks Grafana dashboards against Grafana's own published types (@grafana/schema,
// the TypeScript types Grafana generates from its CUE schemas), with the TypeScript
// compiler. Each dashboard becomes an object literal typed as the package's `Dashboard`,
// and each panel's `options` and `fieldConfig.defaults.custom` as the `Options` and
// `FieldConfig` of its plugin, so that TypeScript's excess-property and type checks
// report keys Grafana no longer has (a heatmap's old `tooltip.show`), wrong enum values
// and wrong types, with the dashboard and panel they come from.
//
//   node scripts/check-dashboard-types.mjs [DASHBOARD.json ...]
//
// Without arguments: every grafana/dashboards/*.json. The packages come from the prefix
// scripts/setup/30-grafana-schema.sh installs into (WOLKVOX_GRAFANA_SCHEMA_PREFIX,
// default /opt/wolkvox-grafana-schema); a missing package is an error, never a skip.
// Exit status: 0 when every dashboard type-checks, 1 when one does not, 2 when the tools
// are missing.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const prefix = process.env.WOLKVOX_GRAFANA_SCHEMA_PREFIX || "/opt/wolkvox-grafana-schema";
const schema = path.join(prefix, "node_modules/@grafana/schema");
const tsc = path.join(prefix, "node_modules/typescript/bin/tsc");

for (const needed of [path.join(schema, "package.json"), tsc]) {
  if (!fs.existsSync(needed)) {
    console.error(`check-dashboard-types: ${needed} is missing; run scripts/setup/30-grafana-schema.sh`);
    process.exit(2);
  }
}
const version = JSON.parse(fs.readFileSync(path.join(schema, "package.json"), "utf8")).version;

// Panel types and the module of @grafana/schema that publishes their options. A panel
// type missing here is an error: add its module rather than leave it unchecked.
const PLUGINS = {
  bargauge: "bargauge",
  heatmap: "heatmap",
  piechart: "piechart",
  stat: "stat",
  "state-timeline": "statetimeline",
  table: "table",
  timeseries: "timeseries",
};
// Plugins whose module publishes no FieldConfig (their custom field config is empty).
const WITHOUT_FIELD_CONFIG = new Set(["bargauge", "stat"]);

const types = path.join(schema, "dist/types");
const lines = [
  `import type { AnnotationQuery, DataQuery, Dashboard, Panel, RowPanel, VariableModel } from ${JSON.stringify(path.join(types, "index"))};`,
];
for (const [name, dir] of Object.entries(PLUGINS)) {
  const module = path.join(types, `raw/composable/${dir}/panelcfg/x/types.gen`);
  lines.push(`import type * as ${ident(name)} from ${JSON.stringify(module)};`);
}
lines.push(
  "// JSON holds an enum's value, not the enum: each string enum becomes the union of",
  "// its values. `Exact` keeps the published type's required keys; `Options` does not,",
  "// since Grafana fills a plugin's missing options from its defaults.",
  "type Exact<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T",
  "  : T extends ReadonlyArray<infer U> ? Array<Exact<U>> : T extends object ? { [K in keyof T]: Exact<T[K]> } : T;",
  "type Options<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T",
  "  : T extends ReadonlyArray<infer U> ? Array<Options<U>> : T extends object ? { [K in keyof T]?: Options<T[K]> } : T;",
  "// A Prometheus annotation as Grafana's Prometheus data source reads it (its",
  "// AnnotationSupport: the query in `target`, the formats beside it). The schema has no",
  "// Prometheus query type and leaves the formats out; nothing else is added.",
  "type PrometheusAnnotation = AnnotationQuery<DataQuery & { expr: string; interval?: string }>",
  "  & { titleFormat?: string; textFormat?: string; tagKeys?: string; useValueForTime?: boolean };",
);

// Each generated line's origin (1-based, as tsc counts), for the error messages.
const origins = [];
function emit(origin, declaration) {
  for (const line of declaration.split("\n")) {
    lines.push(line);
    origins[lines.length] = origin;
  }
}

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : fs.readdirSync(path.join(root, "grafana/dashboards"))
      .filter((f) => f.endsWith(".json"))
      .sort()
      .map((f) => path.join(root, "grafana/dashboards", f));

let problems = [];
let checked = 0; // variables, annotations and panels
files.forEach((file, f) => {
  const name = path.basename(file);
  const dashboard = JSON.parse(fs.readFileSync(file, "utf8"));
  // The dashboard without its lists, then each element of them on its own, so that a
  // problem names the variable, annotation or panel it is in.
  const variables = dashboard.templating?.list ?? [];
  const annotations = dashboard.annotations?.list ?? [];
  const bare = structuredClone(dashboard);
  bare.panels = [];
  if (bare.templating) bare.templating.list = [];
  if (bare.annotations) bare.annotations.list = [];
  emit(name, `export const dashboard${f}: Exact<Dashboard> = ${JSON.stringify(bare, null, 1)};`);
  variables.forEach((v, i) => {
    checked++;
    emit(`${name} variable ${v.name}`,
      `export const variable${f}_${i}: Exact<VariableModel> = ${JSON.stringify(v, null, 1)};`);
  });
  annotations.forEach((a, i) => {
    checked++;
    const type = a.datasource?.type === "prometheus" ? "PrometheusAnnotation" : "AnnotationQuery";
    emit(`${name} annotation "${a.name}"`,
      `export const annotation${f}_${i}: Exact<${type}> = ${JSON.stringify(a, null, 1)};`);
  });
  const panels = [];
  for (const panel of dashboard.panels ?? []) {
    panels.push(panel);
    for (const inner of panel.panels ?? []) panels.push(inner);
  }
  for (const panel of panels) {
    const where = `${name} panel ${panel.id} "${panel.title}" (${panel.type})`;
    checked++;
    if (panel.type === "row") {
      const row = { ...panel, panels: [] };
      emit(where, `export const row${f}_${panel.id}: Exact<RowPanel> = ${JSON.stringify(row, null, 1)};`);
      continue;
    }
    emit(where, `export const panel${f}_${panel.id}: Exact<Panel> = ${JSON.stringify(panel, null, 1)};`);
    const plugin = PLUGINS[panel.type];
    if (!plugin) {
      problems.push(`${where}: no published type for panel type ${panel.type} in PLUGINS`);
      continue;
    }
    const ns = ident(panel.type);
    emit(`${where} options`,
      `export const options${f}_${panel.id}: Options<${ns}.Options> = ${JSON.stringify(panel.options ?? {}, null, 1)};`);
    const custom = panel.fieldConfig?.defaults?.custom ?? {};
    if (WITHOUT_FIELD_CONFIG.has(panel.type)) {
      if (Object.keys(custom).length) {
        problems.push(`${where}: fieldConfig.defaults.custom is set, but ${panel.type} has no custom field config`);
      }
    } else {
      emit(`${where} fieldConfig.defaults.custom`,
        `export const custom${f}_${panel.id}: Options<${ns}.FieldConfig> = ${JSON.stringify(custom, null, 1)};`);
    }
  }
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dashboard-types-"));
const source = path.join(dir, "dashboards.ts");
fs.writeFileSync(source, lines.join("\n") + "\n");
let output = "";
try {
  execFileSync(process.execPath, [
    tsc, "--noEmit", "--strict", "--skipLibCheck", "--target", "es2022",
    "--module", "esnext", "--moduleResolution", "bundler", "--pretty", "false", source,
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
} catch (e) {
  output = `${e.stdout ?? ""}${e.stderr ?? ""}`;
  if (!output.trim()) throw e;
}
// tsc: FILE(LINE,COL): error TSNNNN: MESSAGE (continuation lines indented).
for (const block of output.split(/\n(?=\S)/)) {
  const m = block.match(/^(.*)\((\d+),\d+\): error (TS\d+: [\s\S]*)$/);
  if (!m) {
    if (block.trim()) problems.push(block.trim());
    continue;
  }
  const origin = origins[Number(m[2])] ?? "generated code";
  problems.push(`${origin}: ${m[3].replace(/\s+/g, " ").trim()}`);
}
fs.rmSync(dir, { recursive: true, force: true });

if (problems.length) {
  console.log(`check-dashboard-types: @grafana/schema ${version}: ${problems.length} problem(s)`);
  for (const p of problems) console.log(`  ${p}`);
  process.exit(1);
}
console.log(`check-dashboard-types: @grafana/schema ${version}: ${files.length} dashboard(s), ${checked} variables, annotations and panels: OK`);

function ident(name) {
  return name.replace(/[^A-Za-z0-9]/g, "_");
}
