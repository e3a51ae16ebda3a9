// Preload for Node servers that cannot be told where to listen
// (server-everything reads only PORT and listens on every interface):
//   node --import ./hack/loopback.mjs server.js
// Every TCP listen of the process binds 127.0.0.1, whatever host the server
// asked for; a Unix socket or an inherited handle is left as it is.
import net from "node:net";

const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const [first] = args;
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback])
    const callback = typeof args.at(-1) === "function" ? args.at(-1) : undefined;
    const backlog = args.slice(1).find((a) => typeof a === "number");
    return listen.call(this, { port: Number(first), host: "127.0.0.1", backlog }, callback);
  }
  if (first !== null && typeof first === "object" && first.path === undefined &&
      first.fd === undefined && first._handle === undefined && first.handle === undefined) {
    // listen(options[, callback])
    return listen.call(this, { ...first, host: "127.0.0.1", ipv6Only: false }, ...args.slice(1));
  }
  if (first === undefined || typeof first === "function") {
    // listen([callback]): a random port
    return listen.call(this, { port: 0, host: "127.0.0.1" }, ...args);
  }
  return listen.apply(this, args);
};
