// Copies the browser builds the UI uses from node_modules into the Python package, with their licenses,
// so that an installed ptw serves them itself: no CDN, and no Node where it runs.
import { cpSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "..", "api", "ui", "static", "vendor");

// package -> files to copy (paths inside the package; the target keeps the base name)
const FILES = {
  uplot: ["dist/uPlot.esm.js", "dist/uPlot.min.css", "LICENSE"],
  // The ESM client imports its shared chunk by relative path, so both keep their names.
  "graphql-ws": ["dist/client.js", "dist/common-CGW11Fyb.js", "LICENSE.md"],
  react: ["umd/react.production.min.js", "LICENSE"],
  "react-dom": ["umd/react-dom.production.min.js", "LICENSE"],
  graphiql: ["graphiql.min.js", "graphiql.min.css", "LICENSE"],
};

rmSync(vendor, { recursive: true, force: true });
for (const [name, files] of Object.entries(FILES)) {
  const version = JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8")).version;
  const target = join(vendor, name);
  mkdirSync(target, { recursive: true });
  for (const file of files) cpSync(join(modules, name, file), join(target, file.split("/").pop()));
  console.log(`${name}@${version}: ${files.length} files`);
}
