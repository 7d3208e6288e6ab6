import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { describe, it } from "node:test";
import { KernelClient } from "../../src/runner/client.js";

describe("kernel connection file", () => {
  it("is mode 0600 in a private 0700 folder (it holds the HMAC key), and goes when the client closes", async () => {
    let file = "";
    // A stand-in kernel that only keeps running: the file is what is under test.
    const client = await KernelClient.launch({
      argv: [process.execPath, "-e", "setTimeout(() => {}, 30000)", "{connection_file}"],
      cwd: process.cwd(),
    });
    try {
      file = (client.process?.spawnargs ?? []).at(-1) ?? "";
      assert.ok(existsSync(file), `connection file ${file}`);
      assert.equal(statSync(file).mode & 0o777, 0o600, "file mode");
      assert.equal(statSync(dirname(file)).mode & 0o777, 0o700, "folder mode");
      assert.equal(JSON.parse(readFileSync(file, "utf8")).key, client.connection.key);
    } finally {
      client.kill();
      client.close();
    }
    for (let i = 0; i < 50 && existsSync(dirname(file)); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(dirname(file)), false, "the private folder is removed");
  });
});
