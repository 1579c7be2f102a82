// The protocol floor (PERF.md 3e / 4b'): a hand-written RunPod worker on node:http with keep-alive,
// GET job-take → stamp → POST job-done, no runtime. FLOOR_CONCURRENCY independent loops (default 1).
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const env = process.env;
const workerId = env.RUNPOD_POD_ID ?? 'floor';
const takeUrl = new URL(env.RUNPOD_WEBHOOK_GET_JOB.replaceAll('$ID', workerId));
const doneTemplate = env.RUNPOD_WEBHOOK_POST_OUTPUT.replaceAll('$RUNPOD_POD_ID', workerId);
const agent = new http.Agent({ keepAlive: true });
const headers = { authorization: env.RUNPOD_AI_API_KEY ?? '', 'content-type': 'application/json' };

function request(url, method, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function loop() {
  for (;;) {
    const take = await request(takeUrl, 'GET');
    if (take.status !== 200) continue;
    const job = JSON.parse(take.body);
    const output = { hr: Number(process.hrtime.bigint()) / 1e6, wall: performance.timeOrigin + performance.now() };
    await request(new URL(doneTemplate.replaceAll('$ID', encodeURIComponent(job.id))), 'POST', JSON.stringify({ output }));
  }
}

const concurrency = Number(env.FLOOR_CONCURRENCY ?? '1');
for (let i = 0; i < concurrency; i++) {
  loop().catch((err) => {
    process.stderr.write(`floor loop: ${err.message}\n`);
    process.exit(1);
  });
}
