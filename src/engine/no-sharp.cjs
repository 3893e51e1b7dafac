// transformers.js requires sharp (image decoding) when it loads and refuses to load without it;
// PAL Studio processes no images, and sharp's native binaries would add ~17 MB to every install.
// The bundles alias "sharp" to this stand-in, which fails only if an image is ever decoded.
module.exports = function sharp() {
  throw new Error('PAL Studio does not include an image library (sharp): images cannot be processed.');
};
