// The errors the SDK rejects with. A wait that runs out of time rejects with
// TimeoutError; an AbortSignal's abort rejects with the signal's reason (an AbortError).
import * as grpc from '@grpc/grpc-js';

/** An RPC the broker or scheduler refused or could not serve. */
export class CohortError extends Error {
  constructor(readonly method: string, readonly code: grpc.status, readonly details: string) {
    super(`${method}: ${grpc.status[code]}: ${details}`);
    this.name = 'CohortError';
  }
}

/** A job ended FAILED or CANCELLED: its Error (job.proto) and how many attempts ran. */
export class JobError extends Error {
  constructor(
    readonly jobId: string,
    readonly state: 'FAILED' | 'CANCELLED',
    readonly code: string,
    readonly errorMessage: string,
    readonly details: Buffer,
    readonly attempts: number,
  ) {
    super(`job ${jobId} ${state}: ${code}: ${errorMessage}`);
    this.name = 'JobError';
  }
}

/** A wait's timeout passed (for waitFor: after the broker cancelled the job, unless shielded). */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}
