// grpc-js calls as promises and async iterators, with AbortSignal support and failures
// as CohortError.
import * as grpc from '@grpc/grpc-js';
import { CohortError } from './errors';

type UnaryMethod<Req, Resp> = (
  request: Req, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Resp) => void,
) => grpc.ClientUnaryCall;

export interface CallOptions {
  /** Milliseconds; undefined means no gRPC deadline. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export function unary<Req, Resp>(
  client: grpc.Client, method: UnaryMethod<Req, Resp>, name: string, request: Req, options: CallOptions,
): Promise<Resp> {
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    const callOptions: Partial<grpc.CallOptions> = {};
    if (options.timeoutMs !== undefined) callOptions.deadline = Date.now() + options.timeoutMs;
    const onAbort = () => call.cancel();
    const call = method.call(client, request, new grpc.Metadata(), callOptions, (error, response) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (error === null) resolve(response);
      else if (options.signal?.aborted) reject(options.signal.reason);
      else reject(new CohortError(name, error.code, error.details));
    });
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function* serverStream<Resp>(
  call: grpc.ClientReadableStream<Resp>, name: string, signal?: AbortSignal,
): AsyncGenerator<Resp> {
  const onAbort = () => call.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const response of call) yield response as Resp;
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    const error = e as grpc.ServiceError;
    throw new CohortError(name, error.code, error.details);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    call.cancel();
  }
}
