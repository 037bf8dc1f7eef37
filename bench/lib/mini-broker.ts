// A hand-rolled WebSocket endpoint speaking just enough of the sagachart protocol (hello →
// welcome, request → response) to reach the benchmark participant: no routing, no holding, no
// validation, no re-sending. It is what "no framework" costs on the wire, for the floor and the
// peers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export class MiniBroker {
  readonly #wss: WebSocketServer;
  #http: Server | undefined;
  readonly #pending = new Map<string, (status: number) => void>();
  #socket: WebSocket | undefined;
  #ready: Promise<void>;
  #seq = 0;

  private constructor(wss: WebSocketServer) {
    this.#wss = wss;
    this.#ready = new Promise((resolve) => {
      wss.on('connection', (ws) => {
        ws.on('message', (data) => {
          const frame = JSON.parse(data.toString()) as { type: string; requestId?: string; status?: number };
          if (frame.type === 'hello') {
            this.#socket = ws;
            ws.send(JSON.stringify({ type: 'welcome', protocol: 1, service: 'svc', heartbeatMs: 60_000, maxPayloadBytes: 1 << 20 }));
            resolve();
          } else if (frame.type === 'response' && frame.requestId) {
            this.#pending.get(frame.requestId)?.(frame.status ?? 500);
            this.#pending.delete(frame.requestId);
          }
        });
      });
    });
  }

  static async listen(): Promise<MiniBroker> {
    const http = createServer();
    const wss = new WebSocketServer({ server: http });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const broker = new MiniBroker(wss);
    broker.#http = http;
    (broker as { port?: number }).port = (http.address() as AddressInfo).port;
    return broker;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this as { port?: number }).port}`;
  }

  /** Resolves once the participant has said hello. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Sends one request and resolves with the participant's status. */
  request(uuid: string, step: string, target: string, content: unknown): Promise<number> {
    const requestId = `${uuid}/execute/1/${step}#${++this.#seq}`;
    return new Promise((resolve) => {
      this.#pending.set(requestId, resolve);
      this.#socket!.send(
        JSON.stringify({ type: 'request', requestId, uuid, sagaName: 'bench', step, phase: 'execute', attempt: 1, target, content, deadline: null }),
      );
    });
  }

  close(): void {
    this.#socket?.terminate();
    this.#wss.close();
    this.#http?.close();
  }
}
