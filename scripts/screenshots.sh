#!/usr/bin/env bash
# Refreshes the Dagster UI screenshots in docs/screenshots/ from the running UI.
#
# Assumes: Node.js and npm are on PATH, the project environment is set up (scripts/setup.sh),
# the flight store is up, and the Dagster instance already has runs: `flights demo` (or
# `flights ingest --from 2024-01-02 --landing .flights/demo-landing`), and a held day,
# SCREENSHOTS_HELD_DAY (default 2024-03-01): a day whose reject_rate check failed, e.g. the
# bundled drops of a day plus a file of bad lines, ingested with `flights ingest`. Chromium
# is Debian's (/usr/bin/chromium, installed here with apt-get when missing; override with
# CHROMIUM=/path).
#
# It starts `flights ui` on DAGSTER_UI_PORT (default 3000), drives headless Chromium with
# playwright-core (installed into a throwaway directory, not into the project), writes
#   docs/screenshots/asset-graph.png                the global asset lineage, groups expanded
#   docs/screenshots/partition-materialization.png  flight_data's materialization of a partition
#   docs/screenshots/asset-checks.png               flight_data's Checks tab (rows_reconcile)
#   docs/screenshots/automation.png                 the schedules and sensors
#   docs/screenshots/held-day-checks.png            the checks of the held day (reject_rate)
#   docs/screenshots/quarantine-command.png         `flights quarantine --day <held day>`
# and stops the UI again. Set SCREENSHOTS_UI_URL=http://host:port to use a UI that is
# already running instead (it is then left running). SCREENSHOTS_PARTITION picks the
# partition of the materialization screenshot (default 2021-10-07).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

chromium=${CHROMIUM:-/usr/bin/chromium}
playwright_version=1.65.1
partition=${SCREENSHOTS_PARTITION:-2021-10-07}
held_day=${SCREENSHOTS_HELD_DAY:-2024-03-01}
out="$root/docs/screenshots"

if [ ! -x "$chromium" ] && [ "$chromium" = /usr/bin/chromium ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium ..."
    apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
if [ ! -x "$chromium" ]; then
    echo "Chromium not found at $chromium: apt-get install chromium (or set CHROMIUM)" >&2
    exit 3
fi
for tool in node npm curl; do
    command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 3; }
done

work=$(mktemp -d)
ui_pid=
cleanup() {
    if [ -n "$ui_pid" ]; then
        # SIGINT is what `dagster dev` expects (Ctrl-C): it stops the webserver, daemon and
        # code server itself. Whatever of its process group is still alive after that is killed.
        kill -INT "$ui_pid" 2>/dev/null || true
        for _ in $(seq 60); do
            case "$(ps -o stat= -p "$ui_pid" 2>/dev/null || true)" in ""|Z*) break ;; esac
            sleep 1
        done
        wait "$ui_pid" 2>/dev/null || true
        for _ in $(seq 15); do pgrep -g "$ui_pid" >/dev/null || break; sleep 1; done
        if pgrep -g "$ui_pid" >/dev/null; then kill -KILL -- "-$ui_pid" 2>/dev/null || true; fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${SCREENSHOTS_UI_URL:-}" ]; then
    url=${SCREENSHOTS_UI_URL%/}
else
    port=${DAGSTER_UI_PORT:-3000}
    url="http://127.0.0.1:$port"
    if curl -fs "$url/server_info" >/dev/null 2>&1; then
        echo "something already answers on $url; stop it, pick DAGSTER_UI_PORT, or set SCREENSHOTS_UI_URL" >&2
        exit 1
    fi
    # Job control: the UI gets a process group of its own and, unlike a plain background
    # job, does not ignore SIGINT, which is how it is stopped again.
    set -m
    .venv/bin/flights ui --port "$port" >"$work/ui.log" 2>&1 &
    ui_pid=$!
    set +m
    echo "starting the Dagster UI on $url ..."
    for _ in $(seq 120); do
        curl -fs "$url/server_info" >/dev/null 2>&1 && break
        if ! kill -0 "$ui_pid" 2>/dev/null; then cat "$work/ui.log" >&2; exit 1; fi
        sleep 1
    done
    curl -fs "$url/server_info" >/dev/null || { cat "$work/ui.log" >&2; exit 1; }
fi

# The quarantine review as an operator sees it in a 160-column terminal, prompt included.
{
    echo "\$ flights quarantine --day $held_day --limit 8"
    COLUMNS=160 .venv/bin/flights quarantine --day "$held_day" --limit 8
} >"$work/quarantine.txt"

(cd "$work" && npm init -y >/dev/null && \
    npm install --no-audit --no-fund --loglevel=error "playwright-core@$playwright_version" >/dev/null)

cat >"$work/shoot.js" <<'JS'
const { chromium } = require('playwright-core');

const fs = require('fs');
const [base, out, partition, executablePath, failedShot, heldDay, quarantineText] =
  process.argv.slice(2);
const W = 1600, H = 1000;
const NAV_WIDTH = 240;  // Dagster's left navigation column

async function open(page, path, waitTexts) {
  await page.goto(base + path, { waitUntil: 'networkidle' });
  // First visit: the "Join the Dagster community" dialog; Skip is remembered for the context.
  const skip = page.getByRole('button', { name: 'Skip', exact: true });
  if (await skip.isVisible().catch(() => false)) await skip.click();
  for (const text of waitTexts) {
    await page.getByText(text, { exact: false }).first().waitFor({ timeout: 60000 });
  }
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(1500);
  if (await skip.isVisible().catch(() => false)) await skip.click();  // shown late, sometimes
}

async function shot(page, name, clip) {
  await page.mouse.move(W - 5, 5);  // no hover highlights
  await page.screenshot({ path: `${out}/${name}`, clip: clip || { x: 0, y: 0, width: W, height: H } });
  console.log(`wrote ${name}  (${page.url().replace(base, '')})`);
}

// The graph's <svg> spans the whole laid-out graph plus a margin (nodes outside the view are
// not rendered, so their boxes cannot be measured): its box, in page pixels.
const graphBounds = (page) => page.evaluate(() => {
  let best = null;
  for (const svg of document.querySelectorAll('svg')) {
    const b = svg.getBoundingClientRect();
    if (!best || b.width * b.height > best.width * best.height) best = b;
  }
  return { x0: best.left, y0: best.top, x1: best.right, y1: best.bottom };
});

// The graph animates layout changes: wait until its boxes stop moving.
async function stableBounds(page) {
  let last = '';
  for (let i = 0; i < 40; i++) {
    const g = await graphBounds(page);
    const key = JSON.stringify(g);
    if (key === last) return g;
    last = key;
    await page.waitForTimeout(500);
  }
  return JSON.parse(last);
}

async function assetGraph(page) {
  await open(page, '/asset-groups', ['Global asset lineage', 'flights']);
  // Graph settings (gear, bottom right) -> "Expand all groups".
  if (!(await page.getByText('flight_metadata', { exact: true }).count())) {
    await page.mouse.click(W - 28, H - 109);
    await page.getByRole('menuitem', { name: /Expand all groups/ }).click();
  }
  await page.getByText('flight_metadata', { exact: true }).last().waitFor();
  await page.keyboard.press('Escape');
  // Hide the group tree beside the graph (the toggle right of "Jump to…").
  const jump = page.locator('input[placeholder^="Jump to"]');
  if (await jump.isVisible().catch(() => false)) {
    const b = await jump.boundingBox();
    await page.mouse.click(b.x + b.width + 21, b.y + b.height / 2);
    await page.waitForTimeout(800);
  }
  // Zoom out until the graph fits, then drag it to the middle of the canvas.
  const toolbar = await page.getByText('Materialize all', { exact: false }).first().boundingBox();
  const canvas = { x0: NAV_WIDTH, y0: toolbar.y + toolbar.height + 20, x1: W - 60, y1: H };
  for (let i = 0; i < 12; i++) {
    const g = await stableBounds(page);
    if (g.y1 - g.y0 <= canvas.y1 - canvas.y0 + 120 && g.x1 - g.x0 <= canvas.x1 - canvas.x0 + 120) break;
    await page.mouse.click(W - 28, H - 149);  // zoom out
  }
  const g = await stableBounds(page);
  const dx = (canvas.x0 + canvas.x1 - g.x0 - g.x1) / 2, dy = (canvas.y0 + canvas.y1 - g.y0 - g.y1) / 2;
  const sx = canvas.x0 + 15, sy = canvas.y1 - 15;
  await page.mouse.move(sx, sy);
  await page.mouse.down();
  await page.mouse.move(sx + dx / 2, sy + dy / 2, { steps: 5 });
  await page.mouse.move(sx + dx, sy + dy, { steps: 5 });
  await page.mouse.up();
  await stableBounds(page);
  await shot(page, 'asset-graph.png');
}

// The held day's checks: reject_rate failed on that partition, with the next commands.
async function heldDayChecks(page) {
  await open(page, '/assets/flight_data?view=checks&checkDetail=reject_rate',
             ['reject_rate', 'unique_keys']);
  await page.getByText('Partitions', { exact: true }).last().click();
  await page.getByPlaceholder('Filter by partition').fill(heldDay);
  // The list measures each key in a hidden copy first: click the visible one.
  await page.locator(`text="${heldDay}" >> visible=true`).last().click();
  await page.getByText('flights accept', { exact: false }).first().waitFor({ timeout: 60000 });
  await page.waitForTimeout(1500);
  await shot(page, 'held-day-checks.png');
}

// A terminal's text, rendered as a terminal shows it (box drawing in a monospace font).
async function quarantineOutput(page) {
  const text = fs.readFileSync(quarantineText, 'utf8');
  const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  await page.setContent(
    '<html><body style="margin:0;background:#1e1e1e">' +
    '<pre style="margin:0;padding:16px;display:inline-block;color:#d4d4d4;' +
    'font:13px/1.35 \'DejaVu Sans Mono\',monospace">' + escaped + '</pre></body></html>');
  const box = await page.locator('pre').boundingBox();
  await page.screenshot({
    path: `${out}/quarantine-command.png`,
    clip: { x: 0, y: 0, width: Math.ceil(box.width), height: Math.ceil(box.height) },
    fullPage: true,
  });
  console.log('wrote quarantine-command.png  (flights quarantine)');
}

(async () => {
  const browser = await chromium.launch({
    executablePath, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: W, height: H }, locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  try {
    await assetGraph(page);

    await open(page, `/assets/flight_data?view=events&partition=${partition}`,
               [`Partition ${partition}`, 'rows_quarantined', 'reject_reasons', 'points_per_hour']);
    await shot(page, 'partition-materialization.png');

    await open(page, '/assets/flight_data?view=checks&checkDetail=rows_reconcile',
               ['Checks (', 'unique_keys', 'read = stored', 'Latest execution']);
    await shot(page, 'asset-checks.png');

    await open(page, '/automation', ['ingest_job_schedule', 'landing_zone_sensor', 'flight_cleaner_daily']);
    await shot(page, 'automation.png', { x: 0, y: 0, width: W, height: 560 });

    await heldDayChecks(page);
    await quarantineOutput(page);
  } catch (err) {
    await page.screenshot({ path: failedShot }).catch(() => {});
    console.error(`screenshot failed on ${page.url()}: ${err.message}`);
    console.error(`(no materializations? run \`flights demo\`; the failing page is in ${failedShot})`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
JS

mkdir -p "$out"
failed_shot="${TMPDIR:-/tmp}/flights-screenshots-failed.png"
(cd "$work" && node shoot.js "$url" "$out" "$partition" "$chromium" "$failed_shot" \
    "$held_day" "$work/quarantine.txt")
ls -l "$out"/*.png
