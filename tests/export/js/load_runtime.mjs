// runtime.js is a plain script (no exports): evaluate its text and hand back its two functions.
import { readFileSync } from "node:fs";

export function loadRuntime(path) {
  const source = readFileSync(path, "utf-8");
  const [makemoreLoad, makemoreHash64] = new Function(`${source}\nreturn [makemoreLoad, makemoreHash64];`)();
  return { makemoreLoad, makemoreHash64 };
}
