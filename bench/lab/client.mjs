/* global process, console */
// `node client.mjs PORT N C close|keep-alive`: N GET / requests to 127.0.0.1:PORT, C at a time, each on
// a new connection with `Connection: close` or over C kept-alive ones; exits 1 if any is not a 200.
import http from 'node:http';

const [port, n, c, mode] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4] ?? 10), process.argv[5] ?? 'close'];
const agent = mode === 'close' ? false : new http.Agent({ keepAlive: true, maxSockets: c });
let sent = 0;
let done = 0;
let bad = 0;
await new Promise((resolve) => {
  const finish = () => {
    done++;
    if (done === n) resolve(undefined);
    else one();
  };
  const one = () => {
    if (sent >= n) return;
    sent++;
    const headers = mode === 'close' ? { connection: 'close' } : {};
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, headers }, (res) => {
      if (res.statusCode !== 200) bad++;
      res.resume();
      res.on('end', finish);
    });
    req.on('error', () => {
      bad++;
      finish();
    });
  };
  for (let i = 0; i < c; i++) one();
});
if (agent) agent.destroy();
console.log(JSON.stringify({ done, bad }));
process.exitCode = bad === 0 ? 0 : 1;
