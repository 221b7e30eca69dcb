// Decode the Draco-compressed primitives of glb files with Google's reference decoder
// (draco3dgltf) and print, per file, the decoded positions (node translation applied, glTF axes).
const draco3d = require('draco3dgltf');
const fs = require('fs');

function readGlb(file) {
  const data = fs.readFileSync(file);
  const jlen = data.readUInt32LE(12);
  const doc = JSON.parse(data.subarray(20, 20 + jlen).toString('utf8'));
  const blen = data.readUInt32LE(20 + jlen);
  return { doc, bin: data.subarray(28 + jlen, 28 + jlen + blen) };
}

(async () => {
  const m = await draco3d.createDecoderModule({});
  for (const file of process.argv.slice(2)) {
    const { doc, bin } = readGlb(file);
    const t = (doc.nodes[0].translation || [0, 0, 0]);
    const positions = [];
    let faces = 0;
    for (const prim of doc.meshes[0].primitives) {
      const ext = prim.extensions.KHR_draco_mesh_compression;
      const view = doc.bufferViews[ext.bufferView];
      const bytes = bin.subarray(view.byteOffset || 0, (view.byteOffset || 0) + view.byteLength);
      const buf = new m.DecoderBuffer();
      buf.Init(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength);
      const dec = new m.Decoder();
      const mesh = new m.Mesh();
      const st = dec.DecodeBufferToMesh(buf, mesh);
      if (!st.ok()) throw new Error(`${file}: ${st.error_msg()}`);
      const att = dec.GetAttributeByUniqueId(mesh, ext.attributes.POSITION);
      const arr = new m.DracoFloat32Array();
      dec.GetAttributeFloatForAllPoints(mesh, att, arr);
      for (let i = 0; i < mesh.num_points(); i++) {
        positions.push([arr.GetValue(3 * i) + t[0], arr.GetValue(3 * i + 1) + t[1], arr.GetValue(3 * i + 2) + t[2]]);
      }
      for (const [name, id] of Object.entries(ext.attributes)) {
        if (!dec.GetAttributeByUniqueId(mesh, id).ptr) throw new Error(`${file}: no attribute ${name}`);
      }
      faces += mesh.num_faces();
      m.destroy(arr); m.destroy(mesh); m.destroy(dec); m.destroy(buf);
    }
    console.log(JSON.stringify({ file, faces, positions }));
  }
})().catch((e) => { console.error(e); process.exit(2); });
