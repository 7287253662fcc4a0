// Drives the gallery page (client/web/dist) in headless Chromium (Debian's, through
// playwright-core): uploads real image files, waits for the gallery, checks every image decoded
// (naturalWidth > 0), then searches by text and by tag; last, Google's grpc-web client (text
// mode, tests/browser/grpc-web/page.js) calls GetAccount from the same page. Prints one JSON object on stdout;
// tests/test_browser.py asserts on it.
//
// Environment: PAGE_URL (origin serving dist/), API_URL (the gateway, another origin), TOKEN,
// FILES (JSON list of paths), TAGS (text for the tags field), SEARCH (a word of one file's
// title), CHROMIUM (the browser binary); SCREENSHOT (optional: a PNG path for the gallery).

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 20_000;
const HERE = dirname(fileURLToPath(import.meta.url));

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const result = {
  ok: false,
  steps: [],
  console: [],
  pageErrors: [],
  failedRequests: [],
  responses: [],
};

/** Waits until the page finishes its next action (body[data-finished] grows past `before`). */
async function nextFinish(page, before) {
  await page.waitForFunction(
    (n) => Number(document.body.dataset.finished) > n,
    before,
    { timeout: STEP_TIMEOUT_MS },
  );
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    status: document.getElementById("status").textContent,
    finished: Number(document.body.dataset.finished),
  }));
}

/** The rendered gallery, once every <img> has finished loading (or failed to). */
async function gallery(page) {
  await page.waitForFunction(
    () => Array.from(document.querySelectorAll("#gallery img")).every((img) => img.complete),
    undefined,
    { timeout: STEP_TIMEOUT_MS },
  );
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("#gallery figure")).map((figure) => {
      const img = figure.querySelector("img");
      return {
        id: figure.dataset.photoId,
        title: figure.querySelector(".title").textContent,
        tags: figure.querySelector(".tags").textContent,
        src: img.src,
        complete: img.complete,
        naturalWidth: img.naturalWidth,
        naturalHeight: img.naturalHeight,
      };
    }),
  );
}

async function run() {
  const pageUrl = env("PAGE_URL");
  const apiUrl = env("API_URL");
  const files = JSON.parse(env("FILES"));
  const started = performance.now();
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Loopback only: a proxy from the environment must not see these requests.
      "--no-proxy-server",
    ],
    timeout: 30_000,
  });
  result.launchMs = Math.round(performance.now() - started);
  try {
    result.browserVersion = browser.version();
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("console", (msg) => result.console.push(`${msg.type()}: ${msg.text()}`));
    page.on("pageerror", (error) => result.pageErrors.push(String(error)));
    page.on("requestfailed", (request) =>
      result.failedRequests.push(
        `${request.method()} ${request.url()}: ${request.failure()?.errorText}`,
      ),
    );
    page.on("response", async (response) => {
      const request = response.request();
      if (!["POST", "PUT", "GET"].includes(request.method())) {
        return;
      }
      const url = new URL(response.url());
      if (url.origin === new URL(pageUrl).origin) {
        return;
      }
      const headers = await response.allHeaders().catch(() => ({}));
      result.responses.push({
        method: request.method(),
        origin: url.origin,
        path: url.pathname,
        status: response.status(),
        contentType: headers["content-type"] ?? null,
        grpcStatus: headers["grpc-status"] ?? null,
        allowOrigin: headers["access-control-allow-origin"] ?? null,
      });
    });

    const query = new URLSearchParams({ api: apiUrl, token: env("TOKEN") });
    await page.goto(`${pageUrl}/index.html?${query}`);
    // With ?api= and ?token= the page lists the (still empty) gallery on its own.
    let finish = await nextFinish(page, 0);
    result.steps.push({ step: "open", ...finish, photos: (await gallery(page)).length });
    result.fields = await page.evaluate(() => ({
      api: document.getElementById("api").value,
      tokenSet: document.getElementById("token").value.length > 0,
    }));

    await page.setInputFiles("#files", files);
    await page.fill("#tags", env("TAGS"));
    await page.click("#upload");
    finish = await nextFinish(page, finish.finished);
    result.gallery = await gallery(page);
    result.steps.push({ step: "upload", ...finish, photos: result.gallery.length });
    if (process.env.SCREENSHOT) {
      await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    }

    await page.fill("#query", env("SEARCH"));
    await page.click("#search");
    finish = await nextFinish(page, finish.finished);
    result.searchTitles = (await gallery(page)).map((photo) => photo.title);
    result.steps.push({ step: "search", ...finish, photos: result.searchTitles.length });

    await page.fill("#query", "");
    const tag = env("TAGS").split(/[,\s]+/).filter(Boolean)[0];
    await page.fill("#tag-filter", tag);
    await page.click("#search");
    finish = await nextFinish(page, finish.finished);
    result.tagCount = (await gallery(page)).length;
    result.steps.push({ step: "tag", ...finish, photos: result.tagCount });

    await page.fill("#tag-filter", "no-such-tag");
    await page.click("#search");
    finish = await nextFinish(page, finish.finished);
    result.missingTagCount = (await gallery(page)).length;
    result.steps.push({ step: "missing-tag", ...finish, photos: result.missingTagCount });

    // Google's grpc-web runtime (text mode) from the same page, to the same gateway.
    const bundle = await build({
      entryPoints: [join(HERE, "grpc-web", "page.js")],
      bundle: true,
      write: false,
      format: "iife",
      platform: "browser",
      logLevel: "warning",
    });
    await page.addScriptTag({ content: bundle.outputFiles[0].text });
    result.grpcWebText = await page.evaluate(
      ([api, token]) => globalThis.grpcWebTextGetAccount(api, token),
      [apiUrl, env("TOKEN")],
    );

    result.ok = result.steps.every((step) => step.state === "ready");
  } finally {
    await browser.close();
    result.totalMs = Math.round(performance.now() - started);
  }
}

try {
  await run();
} catch (error) {
  result.ok = false;
  result.error = String(error?.stack ?? error);
}
console.log(JSON.stringify(result));
