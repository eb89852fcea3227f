/**
 * Promise wrappers for dgram sockets shared by the echo responder and the
 * prober: dgram reports a failed bind as an 'error' event and a second close
 * as an exception, neither of which suits an `await`.
 */
import type dgram from 'node:dgram';

/** Binds, settling on 'listening' or on the bind's 'error', and leaves no listener behind. */
export function bindSocket(socket: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      socket.off('listening', onListening);
      reject(error);
    };
    const onListening = (): void => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind({ port, address, exclusive: true });
  });
}

/** Closes a dgram socket; resolves once closed, also when it was closed already. */
export function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed (ERR_SOCKET_DGRAM_NOT_RUNNING)
    }
  });
}
