// Parsing of the target URL.
#include "bench/serve/load_options.h"

#include "common/error.h"

namespace tessera::bench {

Target parse_target_url(const std::string& url) {
  const std::string http = "http://";
  const std::string grpc = "grpc://";
  const bool is_grpc = url.rfind(grpc, 0) == 0;
  TS_CHECK(is_grpc || url.rfind(http, 0) == 0, kInvalidArgument,
           "--url must start with http:// or grpc:// (https is not supported by the load generator), got '{}'", url);
  std::string rest = url.substr(is_grpc ? grpc.size() : http.size());
  Target t;
  if (is_grpc) t.protocol = Protocol::kGrpc;
  const size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) t.base_path = rest.substr(slash);
  while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  if (t.base_path.size() >= 3 && t.base_path.compare(t.base_path.size() - 3, 3, "/v1") == 0)
    t.base_path.resize(t.base_path.size() - 3);
  TS_CHECK(!is_grpc || t.base_path.empty(), kInvalidArgument, "a grpc:// target takes no path, got '{}'", url);
  TS_CHECK(!hostport.empty(), kInvalidArgument, "--url has no host: '{}'", url);
  const std::string default_port = is_grpc ? "" : "80";  // gRPC has no conventional port: name it
  if (hostport.front() == '[') {  // [::1]:8000
    const size_t close = hostport.find(']');
    TS_CHECK(close != std::string::npos, kInvalidArgument, "--url has an unclosed IPv6 bracket: '{}'", url);
    t.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      TS_CHECK(hostport[close + 1] == ':', kInvalidArgument, "--url: expected ':' after ']' in '{}'", url);
      t.port = hostport.substr(close + 2);
    } else {
      t.port = default_port;
    }
  } else {
    const size_t colon = hostport.rfind(':');
    t.host = hostport.substr(0, colon);
    t.port = colon == std::string::npos ? default_port : hostport.substr(colon + 1);
  }
  TS_CHECK(!t.port.empty() || !is_grpc, kInvalidArgument, "a grpc:// target needs a port (grpc://HOST:PORT), got '{}'",
           url);
  TS_CHECK(!t.port.empty() && t.port.find_first_not_of("0123456789") == std::string::npos && t.port.size() <= 5 &&
               std::stoi(t.port) > 0 && std::stoi(t.port) < 65536,
           kInvalidArgument, "--url has an invalid port '{}' in '{}'", t.port, url);
  return t;
}

}  // namespace tessera::bench
