-- A held load's quarantine rows, carried across the rollback that undoes its points.
COPY (SELECT partition_day, source_file, line, byte_offset, reason, raw_record, held
      FROM quarantine WHERE partition_day = %(day)s AND held ORDER BY id) TO STDOUT
