// Preloaded (node --import) into server-everything's own streamable HTTP
// transport, which listens on a port on every interface: a listen(port)
// without a host binds 127.0.0.1 only, so the end-to-end tests use
// loopback networking alone.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const portOnly = (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0])))
    && (args.length === 1 || typeof args[1] === 'function');
  if (portOnly) return listen.call(this, Number(args[0]), '127.0.0.1', ...args.slice(1));
  return listen.apply(this, args);
};
