// Benchmark: how fast the popup shows a tab's session, in real Chromium with the built
// extension, against wpp-sim. Prints, side by side, the first paint from the cached state in
// storage.session (what the user sees at once) and the first live state the worker pushes
// (the baseline: what a popup without the cache would wait for), with the worker warm and
// with the worker stopped just before the popup opens.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const [ext, simBin, runs = "15"] = process.argv.slice(2);
const RUNS = Number(runs);
const port = 20000 + Math.floor(Math.random() * 20000);
const sim = `http://127.0.0.1:${port}`;
const simProcess = spawn(simBin, ["--port", String(port), "--bcrypt-cost", "4", "--init-delay-ms", "300"], { stdio: "ignore" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; i < 50; i++) { try { await fetch(sim + "/healthz"); break; } catch { await sleep(100); } }

const ctx = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), "wpp-bench-")), {
  executablePath: "/usr/bin/chromium", headless: true,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", `--disable-extensions-except=${ext}`, `--load-extension=${ext}`],
});
try {
  let [worker] = ctx.serviceWorkers();
  worker ??= await ctx.waitForEvent("serviceworker");
  const id = new URL(worker.url()).host;
  const page = await ctx.newPage();
  await page.goto(`chrome-extension://${id}/options.html`);
  await page.waitForSelector("#server-url");
  await page.fill("#server-url", sim);
  await page.fill("#secret-key", "THISISMYSECURETOKEN");
  await page.click("#save");
  await page.waitForSelector('#options-status[data-result="ok"]');
  const tab = await page.evaluate(async (u) => (await chrome.tabs.create({ url: u, active: false })).id, sim + "/page/bench");
  const popupUrl = `chrome-extension://${id}/popup.html?tab=${tab}`;

  // Pair the tab once, so every measured open has a cached session to paint.
  const popup = await ctx.newPage();
  await popup.goto(popupUrl);
  await popup.waitForSelector('#status[data-status="QRCODE"]', { timeout: 20000 });
  const session = await popup.getAttribute("#session-id", "title");
  await fetch(`${sim}/__sim/sessions/${session}/scan`, { method: "POST" });
  await popup.waitForSelector('#status[data-status="CONNECTED"]', { timeout: 20000 });
  await popup.close();

  const cdp = await ctx.newCDPSession(page);
  await cdp.send("ServiceWorker.enable");
  // Marks the page as loaded before any script runs, then records when the session ID and
  // the live status first appear.
  await ctx.addInitScript(() => {
    const t0 = performance.now();
    const seen = {};
    new MutationObserver(() => {
      const id = document.querySelector("#session-id");
      const status = document.querySelector("#status");
      if (!seen.cached && id?.title) seen.cached = performance.now() - t0;
      if (!seen.live && status?.dataset.phase === "connected" && document.body.dataset.source === "worker") {
        seen.live = performance.now() - t0;
      }
    }).observe(document, { subtree: true, childList: true, attributes: true });
    globalThis.__wppBench = seen;
  });

  // Stops the extension's service worker and waits until Chromium reports it stopped.
  let workerStatus = "running";
  cdp.on("ServiceWorker.workerVersionUpdated", ({ versions }) => {
    const ours = versions.find((v) => v.scriptURL.startsWith(`chrome-extension://${id}/`));
    if (ours) workerStatus = ours.runningStatus;
  });
  const stopWorker = async () => {
    await cdp.send("ServiceWorker.stopAllWorkers");
    for (let i = 0; i < 100 && workerStatus !== "stopped"; i++) await sleep(10);
    if (workerStatus !== "stopped") throw new Error("the service worker did not stop");
  };
  const measure = async (coldWorker) => {
    const samples = [];
    for (let i = 0; i < RUNS; i++) {
      if (coldWorker) await stopWorker();
      const p = await ctx.newPage();
      await p.goto(popupUrl);
      await p.waitForFunction(() => globalThis.__wppBench?.cached && globalThis.__wppBench?.live, null, { timeout: 20000 });
      samples.push(await p.evaluate(() => globalThis.__wppBench));
      await p.close();
    }
    return samples;
  };
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const p90 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]; };
  const rows = [["worker warm", await measure(false)], ["worker stopped", await measure(true)]];
  console.log(`popup open, ${RUNS} runs each (ms from navigation; median / p90)`);
  console.log("scenario         | cached first paint | live state (baseline)");
  for (const [name, s] of rows) {
    const c = s.map((x) => x.cached), l = s.map((x) => x.live);
    console.log(`${name.padEnd(16)} | ${median(c).toFixed(1).padStart(7)} / ${p90(c).toFixed(1).padStart(6)} | ${median(l).toFixed(1).padStart(7)} / ${p90(l).toFixed(1).padStart(6)}`);
  }
} finally {
  await ctx.close();
  simProcess.kill();
}
