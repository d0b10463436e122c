# Drives Sidekiq for bench/peers/peers.py from Sidekiq's own client (Sidekiq::Client):
# one JSON command per stdin line, one JSON result per stdout line (see peers.py).
# The gate of the gated workloads: jobs are pushed to queue "gate", which the sidekiq
# process does not serve, and released at once by RENAME queue:gate -> queue:bench
# (Sidekiq has no queue pause outside its Enterprise edition).
# Usage: REDIS_URL=redis://127.0.0.1:PORT ruby driver.rb
require 'json'
require 'redis'
require 'sidekiq'

BATCH = 1000
$stdout.sync = true
$blocker = Redis.new(url: ENV.fetch('REDIS_URL'))
$serial = 0

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
def tag(kind) = "#{kind}#{$serial += 1}-#{Process.pid}"
def wait_done(tag) = $blocker.brpop("done:#{tag}", timeout: 0)
def release = $blocker.rename('queue:gate', 'queue:bench')

def push_bulk(queue, tag, n)
  (0...n).step(BATCH) do |i|
    k = [BATCH, n - i].min
    Sidekiq::Client.push_bulk('class' => 'NoopJob', 'queue' => queue, 'args' => Array.new(k) { [tag, n] })
  end
end

OPS = {
  'gated' => lambda do |n|
    t = tag('g')
    t0 = now
    push_bulk('gate', t, n)
    t1 = now
    release
    wait_done(t)
    { enqueue_s: t1 - t0, drain_s: now - t1 }
  end,
  'live' => lambda do |n|
    t = tag('l')
    t0 = now
    push_bulk('bench', t, n)
    wait_done(t)
    { live_s: now - t0 }
  end,
  'single' => lambda do |n|
    t = tag('s')
    t0 = now
    n.times { Sidekiq::Client.push('class' => 'NoopJob', 'queue' => 'gate', 'args' => [t, n]) }
    elapsed = now - t0
    release
    wait_done(t)
    { single_s: elapsed }
  end,
  'roundtrip' => lambda do |n|
    samples = Array.new(n) do
      t = tag('r')
      t0 = now
      Sidekiq::Client.push('class' => 'NoopJob', 'queue' => 'bench', 'args' => [t, 1])
      wait_done(t)
      now - t0
    end
    { rt_samples: samples }
  end,
  'gather' => lambda do |n|
    t = tag('f')
    t0 = now
    push_bulk('bench', t, n)
    wait_done(t)
    { gather_s: now - t0 }
  end
}.freeze

$blocker.ping
puts JSON.generate(ready: true)
$stdin.each_line do |line|
  cmd = JSON.parse(line)
  puts JSON.generate(OPS.fetch(cmd['op']).call(cmd['n']))
end
