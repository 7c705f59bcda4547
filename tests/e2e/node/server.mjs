// Starts `tachyon serve` on 127.0.0.1, port 0, and stops it (always: also when a test
// fails or the process exits). TACHYON_BIN and TACHYON_MODEL come from the CTest driver.
import { spawn } from 'node:child_process';
import net from 'node:net';

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export async function startServer(extraArgs = []) {
  const bin = process.env.TACHYON_BIN;
  const model = process.env.TACHYON_MODEL;
  if (!bin || !model) throw new Error('TACHYON_BIN and TACHYON_MODEL must be set');
  const args = ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', '-t', '2', ...extraArgs];
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    live.delete(proc);
    resolve({ code, signal });
  }));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${log}`)), 30000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${log}`));
    });
  });
  for (let i = 0; i < 100; ++i) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    proc,
    log: () => log,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    // SIGTERM, then SIGKILL after 10 s; resolves to {code, signal, ms}.
    async stop() {
      const t0 = Date.now();
      if (proc.exitCode !== null || proc.signalCode !== null) return { ...(await exited), ms: 0 };
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const r = await exited;
      clearTimeout(killer);
      return { ...r, ms: Date.now() - t0 };
    },
  };
}

// Parses Prometheus text into {name or name{labels}: number}.
export async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Writes raw bytes (optionally one byte every delayMs) and returns everything the server
// sends back until it closes the connection or timeoutMs passes.
export function rawRequest(port, bytes, { timeoutMs = 5000, delayMs = 0 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('close', finish);
    sock.on('error', finish);
    sock.on('connect', async () => {
      const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1');
      if (!delayMs) {
        sock.write(buf);
        return;
      }
      for (let i = 0; i < buf.length && !done; ++i) {
        sock.write(buf.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, delayMs));
      }
    });
  });
}

export function httpPost(path, body, extraHeaders = '') {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  return Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n` +
                `${extraHeaders}Content-Length: ${b.length}\r\n\r\n`, 'latin1'),
    b,
  ]);
}

export function statusOf(response) {
  const m = response.match(/^HTTP\/1\.1 (\d{3})/);
  return m ? Number(m[1]) : 0;
}
