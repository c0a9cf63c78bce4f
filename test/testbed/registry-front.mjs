// The TLS front of the test bed's registries (see startRegistries in testbed.ts): one listener on
// 127.0.0.1:443 for every ECR host name, as real ECR has one per region. It ends TLS with a certificate
// for all the names and hands each connection, by the name the client asked for (SNI), to the plain
// HTTP registry that plays that host. Needed because one registry accepts one password for a user
// (htpasswd), ECR's password differs per region, and only one process can listen on 127.0.0.1:443.
//
// Usage:  node registry-front.mjs CONFIG.json
//         CONFIG: {"host": "127.0.0.1", "port": 443, "cert": FILE, "key": FILE,
//                  "routes": {"<ECR host>": <registry port on 127.0.0.1>, ...}}
// Once listening, one line goes to stdout:  registry front listening on 127.0.0.1:<port>
// Exits 3 with "error: listen EADDRINUSE ..." (or EACCES) when it cannot listen.
// A connection without SNI, or for a name not in routes, is closed after the handshake.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
if (config.host !== '127.0.0.1') throw new Error('registry-front: loopback only');
const routes = new Map(Object.entries(config.routes).map(([h, p]) => [h.toLowerCase(), Number(p)]));

const server = tls.createServer({ cert: readFileSync(config.cert), key: readFileSync(config.key) }, (client) => {
  const name = (client.servername || '').toLowerCase();
  const port = routes.get(name);
  if (!port) {
    console.log(`refused a connection for ${name ? `unknown name ${name}` : 'no name (no SNI)'}`);
    client.destroy();
    return;
  }
  const upstream = net.connect(port, '127.0.0.1');
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', (err) => {
    console.log(`${name} -> 127.0.0.1:${port}: ${err.message}`);
    close();
  });
  client.pipe(upstream).pipe(client);
});
server.on('tlsClientError', (err) => console.log(`TLS handshake failed: ${err.message}`));
server.on('error', (err) => {
  console.log(`error: listen ${err.code ?? ''} ${err.message}`);
  process.exit(3);
});
server.listen(config.port, config.host, () => {
  console.log(`registry front listening on ${config.host}:${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
