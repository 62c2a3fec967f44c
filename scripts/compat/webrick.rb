# WEBrick on the stack side, for scripts/tests/shared-ruby.sh.
#   ruby webrick.rb serve ADDR PORT DIR   files under DIR on GET; a POST to
#                                         /sha256 answers the body's sha256
#   ruby webrick.rb fetch URL OUT         Net::HTTP GET into OUT, then
#                                         POST OUT to URL/../sha256, prints it
require "webrick"
require "net/http"
require "digest"

case ARGV[0]
when "serve"
  addr, port, dir = ARGV[1], Integer(ARGV[2]), ARGV[3]
  log = WEBrick::Log.new($stderr, WEBrick::Log::WARN)
  server = WEBrick::HTTPServer.new(BindAddress: addr, Port: port, DocumentRoot: dir,
                                   Logger: log, AccessLog: [[$stdout, "%h %m %U %s %b"]])
  server.mount_proc("/sha256") do |req, res|
    res.body = Digest::SHA256.hexdigest(req.body || "") + "\n"
  end
  server.mount_proc("/peer") do |req, res|
    res.body = "#{req.peeraddr[3]} #{req.addr[3]}\n"
  end
  trap("TERM") { server.shutdown }
  $stdout.sync = true
  puts "listening on #{addr}:#{port}"
  server.start
when "fetch"
  uri = URI(ARGV[1])
  Net::HTTP.start(uri.host, uri.port) do |http|
    File.open(ARGV[2], "wb") do |f|
      http.request_get(uri.path) { |res| res.read_body { |chunk| f.write(chunk) } }
    end
    post = Net::HTTP::Post.new(URI.join(uri, "/sha256").path)
    post.body = File.binread(ARGV[2])
    puts http.request(post).body
  end
else
  abort "usage: webrick.rb serve ADDR PORT DIR | fetch URL OUT"
end
