// Opens the dashboard in headless Chromium, waits until its live stream is connected (prints
// READY), then waits for a finished call to appear in the feed and the lead list, opens the
// lead's conversation and takes it over from the AI. Prints SEEN with the feed item's text.
//
//   node dashboard.mjs <dashboard url> [screenshot.png]
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  page.on("console", (message) => console.error("page:", message.text()));
  await page.goto(url);
  await page.waitForSelector("#status.live", { timeout: 20000 });
  console.log("READY");
  const item = await page.waitForSelector('#feed li[data-type="call_ended"]', { timeout: 30000 });
  const text = await item.textContent();
  await page.waitForSelector("#leads tr.lead", { timeout: 20000 });
  await page.click("#leads tr.lead");
  await page.waitForSelector("#messages li", { timeout: 20000 });
  await page.click("#takeover");
  await page.waitForFunction(
    () => document.getElementById("control-state").textContent.includes("human"), null, { timeout: 20000 });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log("SEEN " + JSON.stringify(text));
} finally {
  await browser.close();
}
