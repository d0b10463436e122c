# Sidekiq's job for bench/peers, loaded by the `sidekiq` process (-r) on queue "bench".
# NoopJob does nothing but count: when the n-th job of a tag has run, it pushes
# "done:<tag>", so the driver waits without polling (a round trip is a tag of one job:
# the reply list). Sidekiq keeps no results; the count lives in this one process.
# Per-job INFO log lines are turned off (WARN), as for a high-throughput deployment.
require 'sidekiq'

Sidekiq.logger.level = Logger::WARN
Sidekiq.configure_server do |config|
  config.on(:startup) { $stdout.puts('ready'); $stdout.flush }
end

class NoopJob
  include Sidekiq::Worker
  sidekiq_options retry: false

  @lock = Mutex.new
  @counts = Hash.new(0)

  # True once `n` jobs of `tag` have run in this process.
  def self.count(tag, n)
    @lock.synchronize do
      @counts[tag] += 1
      return false if @counts[tag] < n
      @counts.delete(tag)
      true
    end
  end

  def perform(tag, n)
    Sidekiq.redis { |r| r.lpush("done:#{tag}", '1') } if NoopJob.count(tag, n)
  end
end
