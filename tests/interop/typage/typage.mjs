// typage (npm age-encryption, pinned in package-lock.json) driven by Sealdrop's interop tests:
// a second, independent age implementation with post-quantum hybrid recipients.
//
//   node typage.mjs keygen-pq                  prints an AGE-SECRET-KEY-PQ-1… identity, then its age1pq1… recipient
//   node typage.mjs encrypt RECIPIENT…         stdin → stdout, an age file to the recipients
//   node typage.mjs decrypt IDENTITY_FILE      stdin → stdout, with the identities in the file
import { readFileSync } from "node:fs";
import { Decrypter, Encrypter, generateHybridIdentity, identityToRecipient } from "age-encryption";

async function stdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

async function write(bytes) {
  await new Promise((resolve, reject) =>
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve())));
}

const [command, ...args] = process.argv.slice(2);
if (command === "keygen-pq") {
  const identity = await generateHybridIdentity();
  await write(`${identity}\n${await identityToRecipient(identity)}\n`);
} else if (command === "encrypt") {
  const encrypter = new Encrypter();
  for (const recipient of args) encrypter.addRecipient(recipient);
  await write(await encrypter.encrypt(await stdin()));
} else if (command === "decrypt") {
  const decrypter = new Decrypter();
  for (const line of readFileSync(args[0], "ascii").split("\n")) {
    if (line.startsWith("AGE-SECRET-KEY-")) decrypter.addIdentity(line.trim());
  }
  await write(await decrypter.decrypt(await stdin()));
} else {
  process.stderr.write(`unknown command: ${command}\n`);
  process.exit(2);
}
