// Builds the dashboard and vendors GraphiQL into service/dashboard/static/.
// The output is committed, so the service runs without Node; run `npm ci && npm run build`
// after changing anything here (tests/dashboard checks build-info.json against the sources).

import { createHash } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "service", "dashboard", "static");
const vendor = join(out, "vendor");
const modules = join(here, "node_modules");

const VENDORED = [
  ["react/umd/react.production.min.js", "react.production.min.js"],
  ["react-dom/umd/react-dom.production.min.js", "react-dom.production.min.js"],
  ["graphiql/graphiql.min.js", "graphiql.min.js"],
  ["graphiql/graphiql.min.css", "graphiql.min.css"],
  ["@graphiql/plugin-explorer/dist/index.umd.js", "plugin-explorer.umd.js"],
  ["@graphiql/plugin-explorer/dist/style.css", "plugin-explorer.css"],
];
const LICENSED = ["react", "react-dom", "graphiql", "@graphiql/plugin-explorer", "chart.js", "graphql-ws", "graphql"];

async function files(folder) {
  const entries = await readdir(folder, { withFileTypes: true });
  const found = await Promise.all(
    entries.map((entry) => (entry.isDirectory() ? files(join(folder, entry.name)) : [join(folder, entry.name)])),
  );
  return found.flat();
}

/** The hash tests/dashboard recomputes: every input of this build. */
export async function sourceHash() {
  const inputs = ["build.mjs", "package.json", "package-lock.json", "tsconfig.json"].map((name) => join(here, name));
  inputs.push(...(await files(join(here, "src"))));
  const hash = createHash("sha256");
  for (const path of inputs.map((p) => relative(here, p).split("\\").join("/")).sort()) {
    hash.update(path + "\0");
    hash.update(await readFile(join(here, path)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

await rm(out, { recursive: true, force: true });
await mkdir(join(vendor, "licenses"), { recursive: true });

await esbuild.build({
  entryPoints: { dashboard: join(here, "src/dashboard.ts"), "graphiql-init": join(here, "src/graphiql-init.ts") },
  outdir: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "linked",
  logLevel: "warning",
});
await copyFile(join(here, "src", "dashboard.css"), join(out, "dashboard.css"));
// Without their source maps (not shipped), so drop the references to them.
const SOURCE_MAP = /\n?\/[*/]# sourceMappingURL=[^\n]*\s*$/;
for (const [from, to] of VENDORED) {
  const text = await readFile(join(modules, from), "utf8");
  await writeFile(join(vendor, to), text.replace(SOURCE_MAP, "\n"));
}
// Pages name their assets with ?v=<content hash>, so a new build is never
// mixed with a browser's cached copy of the old one.
for (const name of ["dashboard.html", "graphiql.html"]) {
  let html = await readFile(join(here, "src", name), "utf8");
  const assets = [...html.matchAll(/"\/static\/([^"?]+)"/g)].map((match) => match[1]);
  for (const asset of new Set(assets)) {
    const digest = createHash("sha256").update(await readFile(join(out, asset))).digest("hex");
    html = html.replaceAll(`"/static/${asset}"`, `"/static/${asset}?v=${digest.slice(0, 12)}"`);
  }
  await writeFile(join(out, name), html);
}
const versions = {};
for (const name of LICENSED) {
  const manifest = JSON.parse(await readFile(join(modules, name, "package.json"), "utf8"));
  versions[name] = manifest.version;
  const licenseFile = (await readdir(join(modules, name))).find((f) => /^licen[cs]e/i.test(f));
  if (licenseFile) {
    await copyFile(join(modules, name, licenseFile), join(vendor, "licenses", `${name.replace("/", "__")}.txt`));
  }
}
await writeFile(
  join(out, "build-info.json"),
  JSON.stringify({ sources: await sourceHash(), packages: versions }, null, 2) + "\n",
);
console.log(`built ${relative(process.cwd(), out)}`);
