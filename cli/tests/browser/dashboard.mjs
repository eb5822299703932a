// Drives the dashboard in headless Chromium the way a sales manager would, and reports what the
// page showed. Driven by cli/tests/dashboard.rs against a running mesh:
//
//   node dashboard.mjs '<config json>'
//
// config: {base, shop: {org, token}, rival: {org, token}, admin_token, marcus_lead, olga_lead,
//          job_id, screenshots: directory or null}
//
// Prints READY once the page is live (the test then posts a call), and at the end one line
// `REPORT {json}` with what each panel showed. Screenshots (desktop and phone) go to
// `screenshots` when it is set.
import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const report = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const dashboard = (who) => `${config.base}/dashboard?org=${who.org}&token=${encodeURIComponent(who.token)}`;
const shot = async (page, name) => {
  if (config.screenshots) await page.screenshot({ path: `${config.screenshots}/${name}.png`, fullPage: true });
};

async function open(context, who) {
  const page = await context.newPage();
  page.on("console", (message) => console.error("page:", message.text()));
  page.on("pageerror", (error) => console.error("page error:", error.message));
  await page.goto(dashboard(who));
  await page.waitForSelector("#status.live", { timeout: 30000 });
  return page;
}

const texts = (page, selector) => page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent.trim()));

async function chartPoints(page, id) {
  return page.evaluate((id) => {
    const chart = Chart.getChart(document.getElementById(id));
    return { points: chart.data.labels.length,
      total: chart.data.datasets[0].data.reduce((sum, n) => sum + (n || 0), 0) };
  }, id);
}

try {
  const manager = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  let page = await open(manager, config.shop);
  console.log("READY");

  // 1. A call that ends while the page is open appears live, and its lead in the table.
  const live = await page.waitForSelector('#feed li[data-type="call_ended"]:has-text("Sam Ortiz")', { timeout: 60000 });
  report.live = (await live.textContent()).trim();

  // 2. A reload replays the recent feed before anything new happens.
  await page.reload();
  await page.waitForSelector("#status.live", { timeout: 30000 });
  // Every call ended, and what was published with them (the test asks for eight at least).
  await page.waitForFunction(() => document.querySelectorAll('#feed li[data-type="call_ended"]').length >= 3
    && document.querySelectorAll("#feed li").length >= 8, null, { timeout: 20000 });
  report.replayed = await page.$$eval("#feed li", (items) => items.length);
  report.replayed_call_ended = await page.$$eval('#feed li[data-type="call_ended"]', (items) => items.length);
  report.hot_in_feed = await page.$$eval("#feed li.hot", (items) => items.length);

  // 3. Charts: a week has seven days, today's calls are in them; four tiers.
  await page.selectOption("#period", "7");
  await page.waitForSelector('#chart-calls[data-points="7"]', { timeout: 20000 });
  const calls = await chartPoints(page, "chart-calls");
  report.chart_points = calls.points;
  report.chart_calls = calls.total;
  report.tier_points = (await chartPoints(page, "chart-tiers")).points;
  report.totals = (await page.textContent("#totals")).trim();

  // 4. Search finds a lead by the name the caller said.
  await page.waitForSelector("#leads tr.lead", { timeout: 20000 });
  await page.fill("#lead-search", "marcus");
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll("#leads tr.lead");
    return rows.length === 1 && rows[0].textContent.includes("Marcus");
  }, null, { timeout: 20000 });
  report.search = await page.$$eval("#leads tr.lead td.name .link", (links) => links.map((l) => l.textContent));

  // 5. Opened with the keyboard, the lead's analysis says why: factors, intents and evidence.
  await page.focus("#leads tr.lead .link");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#factors li.factor", { timeout: 20000 });
  report.factors = await page.$$eval("#factors li.factor", (items) => items.map((li) => ({
    name: li.dataset.factor, points: li.querySelector(".points").textContent })));
  report.evidence = await texts(page, "#intents .evidence");
  report.name_source = (await page.textContent("#lead-name-source")).trim();
  report.summary = (await page.textContent("#analysis-summary")).trim();
  // Re-running the analysis adds a version beside the first.
  await page.click("#rerun");
  await page.waitForFunction(() => document.querySelectorAll("#analysis-pick option").length >= 2, null, { timeout: 20000 });
  report.versions = await page.$$eval("#analysis-pick option", (options) => options.length);

  // 6. The live call's lead: its conversation, taken over from the AI.
  await page.fill("#lead-search", "Sam");
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll("#leads tr.lead");
    return rows.length === 1 && rows[0].textContent.includes("Sam Ortiz");
  }, null, { timeout: 20000 });
  await page.click("#leads tr.lead");
  await page.click("#tab-messages");
  await page.waitForSelector("#messages li", { timeout: 20000 });
  await page.click("#takeover");
  await page.waitForFunction(
    () => document.getElementById("control-state").textContent.includes("human"), null, { timeout: 20000 });

  // The picture for the README: every lead, best first, Marcus's call explained.
  await page.fill("#lead-search", "");
  await page.waitForFunction(() => document.querySelectorAll("#leads tr.lead").length >= 3, null, { timeout: 20000 });
  await page.click(`#leads tr.lead[data-lead="${config.marcus_lead}"] .link`);
  await page.click("#tab-analysis");
  await page.waitForSelector("#factors li.factor", { timeout: 20000 });
  await shot(page, "dashboard-desktop");

  // 7. On a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await open(phone, config.shop);
  await small.waitForSelector("#leads tr.lead", { timeout: 20000 });
  await small.click("#leads tr.lead .link");
  await small.waitForSelector("#factors li.factor", { timeout: 20000 });
  report.phone_overflow = await small.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (config.screenshots) {
    await small.evaluate(() => document.getElementById("lead-section").scrollIntoView());
    await small.screenshot({ path: `${config.screenshots}/dashboard-phone.png` });
  }
  await phone.close();

  // 8. Interviews: the admin sees the job's sessions; an organization token sees none.
  await page.click('.views [data-view="interviews"]');
  await page.fill("#job-id", config.job_id);
  await page.click("#interview-form button");
  await page.waitForSelector("#interviews-note", { timeout: 10000 });
  report.interviews_as_organization = await page.$$eval("#interview-rows tr", (rows) => rows.length);
  const admin = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const adminPage = await open(admin, { org: config.shop.org, token: config.admin_token });
  await adminPage.click('.views [data-view="interviews"]');
  await adminPage.fill("#job-id", config.job_id);
  await adminPage.click("#interview-form button");
  await adminPage.waitForSelector("#interview-rows tr.session", { timeout: 20000 });
  report.interviews = await adminPage.$$eval("#interview-rows tr.session", (rows) => rows.map((r) => ({
    candidate: r.cells[0].textContent, status: r.cells[2].textContent, overall: r.cells[3].textContent,
    recommendation: r.cells[7].textContent })));
  await shot(adminPage, "dashboard-interviews");
  await admin.close();

  // 9. Another organization's token: its own leads, feed and charts only, and a 403 for
  // everything of the shop's, whatever the page is asked.
  const rival = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const rivalPage = await open(rival, config.rival);
  await rivalPage.waitForSelector("#leads tr.lead", { timeout: 20000 });
  await rivalPage.waitForFunction(() => document.querySelectorAll('#feed li[data-type="call_ended"]').length >= 1,
    null, { timeout: 20000 });
  await rivalPage.selectOption("#period", "7");
  await rivalPage.waitForSelector('#chart-calls[data-points="7"]', { timeout: 20000 });
  // Names the feed shows come from the rival's own leads, looked up as they arrive.
  await rivalPage.waitForTimeout(500);
  report.rival = {
    leads: await rivalPage.$$eval("#leads tr.lead td.name .link", (links) => links.map((l) => l.textContent)),
    feed: await texts(rivalPage, "#feed li"),
    chart_calls: (await chartPoints(rivalPage, "chart-calls")).total,
    forbidden: await rivalPage.evaluate(async ({ shop, marcus, token }) => {
      const get = (path) => fetch(path, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.status);
      return {
        leads: await get(`/api/leads?org_id=${shop}`),
        lead: await get(`/api/leads/${marcus}`),
        analyses: await get(`/api/leads/${marcus}/analyses`),
        messages: await get(`/api/conversations/${marcus}/messages`),
        summary: await get(`/api/metrics/summary?org_id=${shop}`),
        stream: await fetch(`/api/stream/organization/${shop}?replay=50&token=${encodeURIComponent(token)}`)
          .then((r) => { const status = r.status; r.body?.cancel(); return status; }),
        rerun: await fetch("/api/conversations/conv_marcus/analysis/run", { method: "POST",
          headers: { Authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" })
          .then((r) => r.status),
      };
    }, { shop: config.shop.org, marcus: config.marcus_lead, token: config.rival.token }),
  };
  await rival.close();
  console.log("REPORT " + JSON.stringify(report));
} finally {
  await browser.close();
}
