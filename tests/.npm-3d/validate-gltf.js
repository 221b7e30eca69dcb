// Validate glb files with the Khronos glTF validator; prints one JSON line per file.
const validator = require('gltf-validator');
const fs = require('fs');
(async () => {
  for (const file of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {maxIssues: 100});
    const errors = report.issues.messages.filter((m) => m.severity === 0)
      .map((m) => `${m.code} ${m.pointer || ''} ${m.message}`);
    console.log(JSON.stringify({file, numErrors: report.issues.numErrors, errors}));
  }
})().catch((e) => { console.error(e); process.exit(2); });
