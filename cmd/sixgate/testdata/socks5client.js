// A third-party SOCKS 5 client (the npm package "socks") exercising BIND and
// UDP ASSOCIATE against sixgate. Usage:
//   node socks5client.js bind <proxyHost> <proxyPort> [user pass]
//     prints "BOUND host:port", waits for a peer, sends "hello-from-client",
//     prints "PEER <data>" with what the peer sent, exits 0.
//   node socks5client.js udp <proxyHost> <proxyPort> <echoHost> <echoPort> <count> [user pass]
//     sends <count> datagrams through the association to a UDP echo server
//     and checks every echo comes back from the echo server; exits 0.
'use strict';
const path = require('path');
const { SocksClient } = require(path.join(process.env.SIXGATE_NODE_MODULES, 'socks'));
const dgram = require('dgram');

const [mode, host, portStr, ...rest] = process.argv.slice(2);
const proxy = { host, port: Number(portStr), type: 5 };
function fail(msg) { console.error('FAIL ' + msg); process.exit(1); }
setTimeout(() => fail('timeout'), 15000).unref();

async function bind(user, pass) {
  if (user) { proxy.userId = user; proxy.password = pass; }
  const client = new SocksClient({ proxy, command: 'bind', destination: { host: '0.0.0.0', port: 0 } });
  client.on('bound', (info) => {
    console.log(`BOUND ${info.remoteHost.host}:${info.remoteHost.port}`);
  });
  client.on('established', (info) => {
    const sock = info.socket;
    sock.write('hello-from-client');
    let got = '';
    sock.on('data', (d) => { got += d.toString(); });
    sock.on('end', () => { console.log(`PEER ${got} FROM ${info.remoteHost.host}`); sock.end(); process.exit(0); });
  });
  client.on('error', (e) => fail(e.message));
  client.connect();
}

async function udp(echoHost, echoPort, count, user, pass) {
  if (user) { proxy.userId = user; proxy.password = pass; }
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  // SocksClient.createConnection only allows connect: drive the client and
  // wait for the association to be established.
  const info = await new Promise((resolve, reject) => {
    const c = new SocksClient({
      proxy, command: 'associate', destination: { host: '127.0.0.1', port: sock.address().port },
    });
    c.on('established', resolve);
    c.on('error', reject);
    c.connect();
  });
  const relay = info.remoteHost;
  let seen = 0;
  const want = new Map();
  sock.on('message', (msg) => {
    const f = SocksClient.parseUDPFrame(msg);
    if (f.remoteHost.host !== echoHost || f.remoteHost.port !== Number(echoPort)) fail('wrong source ' + JSON.stringify(f.remoteHost));
    const key = f.data.toString('hex');
    if (!want.has(key)) fail('unexpected payload');
    want.delete(key);
    if (++seen === count) { console.log(`UDP OK ${seen}`); info.socket.end(); sock.close(); process.exit(0); }
  });
  for (let i = 0; i < count; i++) {
    const size = 1 + ((i * 97) % 1400);
    const data = Buffer.concat([Buffer.from(`${i}:`), Buffer.alloc(size, i % 256)]);
    want.set(data.toString('hex'), true);
    const frame = SocksClient.createUDPFrame({ remoteHost: { host: echoHost, port: Number(echoPort) }, data });
    sock.send(frame, relay.port, relay.host);
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
  }
}

(async () => {
  try {
    if (mode === 'bind') await bind(rest[0], rest[1]);
    else if (mode === 'udp') await udp(rest[0], rest[1], Number(rest[2]), rest[3], rest[4]);
    else fail('unknown mode');
  } catch (e) { fail(e.message); }
})();
