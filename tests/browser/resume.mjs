// A large file uploaded in parts from the gallery page (client/web/dist), interrupted by a page
// reload and resumed: headless Chromium (Debian's, through playwright-core) picks FILE, lets
// exactly one part PUT reach S3 (the other parts' PUTs are held back by a route until the
// reload cancels them), reloads the page once S3 answered that part with 200, picks the same
// file again and finishes. Reports every part PUT (partNumber, which load of the page sent it,
// status) and the page's saved upload state; tests/test_browser.py asserts on it.
//
// Environment: PAGE_URL, API_URL, TOKEN, FILE (a path), S3_URL (S3's origin), CHROMIUM,
// MULTIPART_THRESHOLD (bytes, passed to the page as ?multipart_threshold=).

import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 60_000;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const result = { ok: false, steps: [], puts: [], pageErrors: [] };

async function nextFinish(page, before) {
  await page.waitForFunction((n) => Number(document.body.dataset.finished) > n, before, {
    timeout: STEP_TIMEOUT_MS,
  });
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    status: document.getElementById("status").textContent,
    finished: Number(document.body.dataset.finished),
  }));
}

function savedUploads(page) {
  return page.evaluate(() =>
    Object.keys(localStorage)
      .filter((key) => key.startsWith("photovault.upload:"))
      .map((key) => JSON.parse(localStorage.getItem(key))),
  );
}

function partNumberOf(request) {
  const number = new URL(request.url()).searchParams.get("partNumber");
  return request.method() === "PUT" && number !== null ? Number(number) : null;
}

async function run() {
  const s3Origin = env("S3_URL");
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server"],
    timeout: 30_000,
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (error) => result.pageErrors.push(String(error)));
    let load = 1; // which load of the page sends a request
    const sentBy = new Map(); // request -> its record in result.puts
    page.on("request", (request) => {
      const partNumber = partNumberOf(request);
      if (partNumber !== null && new URL(request.url()).origin === s3Origin) {
        const record = { load, partNumber, status: null };
        sentBy.set(request, record);
        result.puts.push(record);
      }
    });
    page.on("response", (response) => {
      const record = sentBy.get(response.request());
      if (record) record.status = response.status();
    });

    // First load: the first part PUT goes to S3, the others wait until the reload drops them.
    let passed = null;
    await page.route(
      (url) => url.origin === s3Origin,
      async (route) => {
        const partNumber = partNumberOf(route.request());
        if (partNumber === null || passed === null || passed === partNumber) {
          passed ??= partNumber;
          await route.continue();
        }
      },
    );
    const query = new URLSearchParams({
      api: env("API_URL"),
      token: env("TOKEN"),
      multipart_threshold: env("MULTIPART_THRESHOLD"),
    });
    await page.goto(`${env("PAGE_URL")}/index.html?${query}`);
    let finish = await nextFinish(page, 0);
    result.steps.push({ step: "open", ...finish });

    const stored = page.waitForResponse(
      (response) => partNumberOf(response.request()) !== null && response.status() === 200,
    );
    await page.setInputFiles("#files", env("FILE"));
    await page.click("#upload");
    result.firstStored = partNumberOf((await stored).request());
    result.savedBeforeReload = await savedUploads(page);

    load = 2;
    await page.reload();
    await page.unrouteAll({ behavior: "ignoreErrors" });
    finish = await nextFinish(page, 0);
    result.steps.push({ step: "reload", ...finish });
    result.savedAfterReload = await savedUploads(page);

    await page.setInputFiles("#files", env("FILE"));
    await page.click("#upload");
    finish = await nextFinish(page, finish.finished);
    result.steps.push({ step: "resume", ...finish });
    result.savedAfterConfirm = await savedUploads(page);
    result.ok = result.steps.every((step) => step.state === "ready");
  } finally {
    await browser.close();
  }
}

try {
  await run();
} catch (error) {
  result.ok = false;
  result.error = String(error?.stack ?? error);
}
console.log(JSON.stringify(result));
