// A third-party SOCKS 5 client (the npm package "socks") exercising BIND and
// UDP ASSOCIATE against sixgate. Usage:
//   node socks5client.js bind <proxyHost> <proxyPort> [user pass]
//     prints "BOUND host:port", waits for a peer, sends "hello-from-client",
//     prints "PEER <data>" with what the peer sent, exits 0.
//   node socks5client.js udp <proxyHost> <proxyPort> <echoHost> <echoPort> <count> [user pass]
//     sends <count> datagrams through the association to a UDP echo server,
//     checks every echo comes back intact from the echo server, prints
//     "UDP OK <count>" and exits 0.
'use strict';
const path = require('path');
const { SocksClient } = require(path.join(process.env.SIXGATE_NODE_MODULES, 'socks'));
const dgram = require('dgram');

const [mode, host, portStr, ...rest] = process.argv.slice(2);
const proxy = { host, port: Number(portStr), type: 5 };
function fail(msg) { console.error('FAIL ' + msg); process.exit(1); }
setTimeout(() => fail('timeout'), 25000).unref();

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

// udp sends count datagrams of 1..1400 bytes to the echo server through
// the association and checks that each comes back once, intact, from the echo
// server. A probe warms the path up first (an upstream relay may drop what
// arrives before it is ready), and datagrams lost under load are sent again,
// up to three more rounds (logged on stderr).
async function udp(echoHost, echoPortStr, count, user, pass) {
  if (user) { proxy.userId = user; proxy.password = pass; }
  const echoPort = Number(echoPortStr);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const all = new Map(); // hex payload -> payload
  for (let i = 0; i < count; i++) {
    const data = Buffer.concat([Buffer.from(i + ':'), Buffer.alloc(1 + ((i * 97) % 1400), i % 256)]);
    all.set(data.toString('hex'), data);
  }
  const probeHex = Buffer.from('probe').toString('hex');
  const got = new Set();
  let probed = false;
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  // SocksClient.createConnection only allows connect: drive the client and
  // wait for the association to be established.
  const info = await new Promise((resolve, reject) => {
    const c = new SocksClient({ proxy, command: 'associate', destination: { host: '127.0.0.1', port: sock.address().port } });
    c.on('established', resolve);
    c.on('error', reject);
    c.connect();
  });
  const relay = info.remoteHost;
  const send = (data) => sock.send(SocksClient.createUDPFrame({ remoteHost: { host: echoHost, port: echoPort }, data }), relay.port, relay.host);
  sock.on('message', (msg) => {
    const f = SocksClient.parseUDPFrame(msg);
    if (f.remoteHost.host !== echoHost || f.remoteHost.port !== echoPort) fail('wrong source ' + JSON.stringify(f.remoteHost));
    const key = f.data.toString('hex');
    if (key === probeHex) { probed = true; return; }
    if (!all.has(key)) fail('a payload that was never sent');
    got.add(key); // an echo of a resent datagram is no duplicate
    if (got.size === count) { console.log('UDP OK ' + count); info.socket.end(); sock.close(); process.exit(0); }
  });
  for (let i = 0; i < 50 && !probed; i++) { send(Buffer.from('probe')); await sleep(100); }
  if (!probed) fail('no probe came back');
  for (let round = 0; round < 4; round++) {
    let n = 0;
    for (const [key, data] of all) {
      if (got.has(key)) continue;
      send(data);
      if (++n % 20 === 0) await sleep(5);
    }
    if (round > 0) console.error('round ' + round + ': sent ' + n + ' again');
    await sleep(3000);
  }
  fail((count - got.size) + ' datagrams did not come back');
}

(async () => {
  try {
    if (mode === 'bind') await bind(rest[0], rest[1]);
    else if (mode === 'udp') await udp(rest[0], rest[1], Number(rest[2]), rest[3], rest[4]);
    else fail('unknown mode');
  } catch (e) { fail(e.message); }
})();
