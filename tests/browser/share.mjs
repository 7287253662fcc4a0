// The gallery's share flow in headless Chromium: the owner's page (with a token) clicks the
// first tile's Share button and reads the share URL it shows; a fresh browser context (no
// token, no storage) opens that URL and reports the tiles it renders. Then a link with a
// password (SHARED_PASSWORD_URL): the page asks for the password, which is typed in.
// Every request to the gateway is recorded with whether it carried an authorization header.
// Prints one JSON object on stdout; tests/test_browser.py asserts on it.
//
// Environment: PAGE_URL, API_URL, TOKEN, CHROMIUM, PASSWORD_TOKEN, PASSWORD.

import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 30_000;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function tilesOf(page) {
  await page.waitForFunction(
    () => {
      const imgs = Array.from(document.querySelectorAll("#gallery img"));
      return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
    },
    undefined,
    { timeout: STEP_TIMEOUT_MS },
  );
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("#gallery figure")).map((figure) => ({
      id: figure.dataset.photoId,
      src: figure.querySelector("img")?.src ?? "",
      naturalWidth: figure.querySelector("img")?.naturalWidth ?? 0,
      text: figure.textContent ?? "",
    })),
  );
}

function recordCalls(page, calls) {
  page.on("request", (request) => {
    if (request.url().startsWith(env("API_URL")) && request.method() === "POST") {
      calls.push({ path: new URL(request.url()).pathname, auth: "authorization" in request.headers() });
    }
  });
}

async function run() {
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server"],
    timeout: 30_000,
  });
  try {
    const owner = await browser.newContext();
    const page = await owner.newPage();
    const query = new URLSearchParams({ api: env("API_URL"), token: env("TOKEN") });
    await page.goto(`${env("PAGE_URL")}/index.html?${query}`);
    await tilesOf(page);
    const before = await page.evaluate(() => document.body.dataset.finished);
    await page.click("#gallery figure button.share");
    await page.waitForFunction(
      (n) => document.body.dataset.finished !== n && document.querySelector("input.share-url"),
      before,
      { timeout: STEP_TIMEOUT_MS },
    );
    const shareUrl = await page.inputValue("input.share-url");

    const visitor = await browser.newContext();
    const view = await visitor.newPage();
    const calls = [];
    recordCalls(view, calls);
    await view.goto(shareUrl);
    const tiles = await tilesOf(view);
    const hidden = await view.evaluate(() => ({
      owner: document.getElementById("owner")?.hidden,
      token: document.getElementById("token")?.value,
    }));

    const locked = await visitor.newPage();
    recordCalls(locked, calls);
    const lockedQuery = new URLSearchParams({ api: env("API_URL"), share: env("PASSWORD_TOKEN") });
    await locked.goto(`${env("PAGE_URL")}/index.html?${lockedQuery}`);
    await locked.waitForSelector("#share-form:not([hidden])", { timeout: STEP_TIMEOUT_MS });
    const asked = await locked.textContent("#status");
    await locked.fill("#share-password", env("PASSWORD"));
    await locked.click("#share-open");
    const lockedTiles = await tilesOf(locked);
    const title = await locked.textContent("#share-title");
    console.log(
      JSON.stringify({ ok: true, shareUrl, tiles, hidden, calls, asked, lockedTiles, title }),
    );
  } finally {
    await browser.close();
  }
}

run().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error) }));
  process.exitCode = 1;
});
