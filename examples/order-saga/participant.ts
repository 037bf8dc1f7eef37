// One participant service of the demo, in its own process: `participant.ts <service>`, with the
// orchestrator's URL and this service's token in SAGACHART_URL and SAGACHART_TOKEN. Every ledger
// entry goes to stdout as a `LEDGER {json}` line, for the orchestrator's summary.
import { connectParticipant } from '../../src/index.js';
import { createServices } from './participants.js';

const service = process.argv[2] ?? '';
const url = process.env.SAGACHART_URL;
const token = process.env.SAGACHART_TOKEN;
const services = createServices((entry) => process.stdout.write(`LEDGER ${JSON.stringify(entry)}\n`));
const definition = Object.hasOwn(services, service) ? services[service] : undefined;
if (!definition || !url || !token) {
  console.error(`usage: SAGACHART_URL=ws://… SAGACHART_TOKEN=… participant.ts <inventory|payment|shipping>`);
  process.exit(2);
}

// The handlers, and the two-phase commit's hooks of the services that hold changes until commit.
const participant = await connectParticipant({ url, service, token, ...definition, instance: `${service}-${process.pid}` });
process.stdout.write(`READY ${service}\n`);

const stop = async () => {
  await participant.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
// The orchestrator that started this process was killed (kill -9 leaves no chance to stop us):
// the pipe to it closes, and this service goes too rather than run on, orphaned.
process.stdout.on('error', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.resume();
