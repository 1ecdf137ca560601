// Preloaded (node --require) by the virtual-hosted-style test only: "<bucket>.localhost" resolves to
// 127.0.0.1, as a wildcard DNS record for a gateway's domain would (glibc here resolves only
// "localhost" itself).
const dns = require("node:dns");
const lookup = dns.lookup;
dns.lookup = function (hostname, ...rest) {
  if (typeof hostname === "string" && hostname.toLowerCase().endsWith(".localhost")) hostname = "127.0.0.1";
  return lookup.call(this, hostname, ...rest);
};
