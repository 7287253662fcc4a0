// Loads the gallery page (client/web/dist) twice in one headless Chromium context and reports,
// per load, each image request and whether Chromium served it from its HTTP cache (the CDP
// event Network.requestServedFromCache) or from the network. Presigned GET URLs carry
// `response-cache-control: private, max-age=<lifetime>, immutable` and the service hands out
// the same URL within a signing window, so the second load should not touch S3 at all.
// Prints one JSON object on stdout; tests/test_browser.py asserts on it.
//
// Environment: PAGE_URL, API_URL, TOKEN, CHROMIUM.

import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 20_000;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function loadGallery(page, cdp, url) {
  const images = new Map(); // requestId -> {url, fromCache, status}
  const onRequest = (event) => {
    if (event.type === "Image") images.set(event.requestId, { url: event.request.url, fromCache: false, status: null });
  };
  const onCached = (event) => {
    const image = images.get(event.requestId);
    if (image) image.fromCache = true;
  };
  const onResponse = (event) => {
    const image = images.get(event.requestId);
    if (image) {
      image.status = event.response.status;
      image.fromCache ||= Boolean(event.response.fromDiskCache || event.response.fromMemoryCache);
    }
  };
  cdp.on("Network.requestWillBeSent", onRequest);
  cdp.on("Network.requestServedFromCache", onCached);
  cdp.on("Network.responseReceived", onResponse);
  await page.goto(url);
  await page.waitForFunction(
    () => {
      const imgs = Array.from(document.querySelectorAll("#gallery img"));
      return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
    },
    undefined,
    { timeout: STEP_TIMEOUT_MS },
  );
  const srcs = await page.evaluate(() =>
    Array.from(document.querySelectorAll("#gallery img")).map((img) => img.src),
  );
  cdp.off("Network.requestWillBeSent", onRequest);
  cdp.off("Network.requestServedFromCache", onCached);
  cdp.off("Network.responseReceived", onResponse);
  return { srcs, images: Array.from(images.values()) };
}

async function run() {
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server"],
    timeout: 30_000,
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    const query = new URLSearchParams({ api: env("API_URL"), token: env("TOKEN") });
    const url = `${env("PAGE_URL")}/index.html?${query}`;
    const first = await loadGallery(page, cdp, url);
    // A new navigation to the same page, as a user coming back to it.
    await page.goto("about:blank");
    const second = await loadGallery(page, cdp, url);
    console.log(JSON.stringify({ ok: true, first, second }));
  } finally {
    await browser.close();
  }
}

run().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }));
  process.exitCode = 1;
});
