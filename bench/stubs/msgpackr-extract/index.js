// See package.json: msgpackr catches this and uses its JavaScript string extraction.
throw new Error('msgpackr-extract stand-in: native acceleration not installed');
