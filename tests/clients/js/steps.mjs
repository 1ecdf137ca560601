// The step runner both client programs share: `node <client>.mjs` reads one JSON step per line on
// stdin, {"op": "...", "args": {...}}, runs it, and answers one JSON line on stdout:
// {"ok": true, "result": {...}} or {"ok": false, "error": "..."}. One process per test, so Node
// and the SDK start once, and the test checks the upstream between steps.
import { createInterface } from "node:readline";

export async function serve(ops, extra = () => ({})) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      const { op, args } = JSON.parse(line);
      if (!(op in ops)) throw new Error(`unknown op ${op}`);
      answer = { ok: true, result: { ...(await ops[op](args ?? {})), ...extra() } };
    } catch (err) {
      answer = {
        ok: false,
        error: `${err.name}: ${err.message} ${err.code ?? ""} ${JSON.stringify(err.$metadata ?? {})}\n${err.stack}`,
      };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
}
