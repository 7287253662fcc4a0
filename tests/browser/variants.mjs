// Loads the gallery page (client/web/dist) in headless Chromium and reports what each tile
// shows (its <img> source and decoded size, the ThumbHash placeholder behind it, the link it
// opens) and the bytes of every image request (CDP Network.loadingFinished); then clicks the
// first tile and reports the URL of the page it opened.
// Prints one JSON object on stdout; tests/test_browser.py asserts on it.
//
// Environment: PAGE_URL, API_URL, TOKEN, CHROMIUM.

import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 30_000;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
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
    const images = new Map(); // requestId -> {url, bytes}
    cdp.on("Network.requestWillBeSent", (event) => {
      if (event.type === "Image") images.set(event.requestId, { url: event.request.url, bytes: 0 });
    });
    cdp.on("Network.loadingFinished", (event) => {
      const image = images.get(event.requestId);
      if (image) image.bytes = event.encodedDataLength;
    });
    const query = new URLSearchParams({ api: env("API_URL"), token: env("TOKEN") });
    await page.goto(`${env("PAGE_URL")}/index.html?${query}`);
    await page.waitForFunction(
      () => {
        const imgs = Array.from(document.querySelectorAll("#gallery img"));
        return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
      },
      undefined,
      { timeout: STEP_TIMEOUT_MS },
    );
    const tiles = await page.evaluate(() =>
      Array.from(document.querySelectorAll("#gallery figure")).map((figure) => {
        const img = figure.querySelector("img");
        const link = figure.querySelector("a");
        return {
          id: figure.dataset.photoId,
          src: img?.src ?? "",
          naturalWidth: img?.naturalWidth ?? 0,
          naturalHeight: img?.naturalHeight ?? 0,
          background: img?.style.backgroundImage ?? "",
          href: link?.href ?? "",
        };
      }),
    );
    const [opened] = await Promise.all([
      context.waitForEvent("page", { timeout: STEP_TIMEOUT_MS }),
      page.click("#gallery figure a"),
    ]);
    await opened.waitForLoadState("load", { timeout: STEP_TIMEOUT_MS });
    console.log(
      JSON.stringify({ ok: true, tiles, images: Array.from(images.values()), opened: opened.url() }),
    );
  } finally {
    await browser.close();
  }
}

run().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }));
  process.exitCode = 1;
});
